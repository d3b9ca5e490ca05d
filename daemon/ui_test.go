package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/config"
	"github.com/corral-dev/corral/daemon/testcluster"
)

// findChromium returns a headless-capable Chromium, or "".
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser drives one headless Chromium tab and keeps a screenshot of each
// page it is told to (in dir).
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := findChromium()
	if exe == "" {
		t.Skip("chromium not installed (Debian package chromium; .ci/run installs it)")
	}
	dir := os.Getenv("CORRAL_UI_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 900), chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelC()
		cancelA()
		if t.Failed() {
			t.Logf("UI screenshots are in %s", dir)
		}
	})
	if err := chromedp.Do(ctx); err != nil { // start the browser
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, dir: dir}
}

// do runs steps with a deadline.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.shot("failed-" + what)
		b.t.Fatalf("%s: %v", what, err)
	}
}

// until waits until the JavaScript expression is true in the page.
func (b *browser) until(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		b.shot("failed-" + what)
		text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText`))
		b.t.Fatalf("UI never showed %s (%s): %v\npage text:\n%s", what, expr, err, text)
	}
}

// shot saves a full-page screenshot as dir/name.png.
func (b *browser) shot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// TestWebUI drives the embedded UI in headless Chromium against a 3-node
// cluster: jobs submitted through the API show up on the overview and in
// the jobs list, a job's detail shows its payload and result, a failed job
// is retried from the failed set by clicking, a queue is paused by
// clicking, and the cluster and plugin pages list every node. Behind an
// API that answers 401 without a token (as ACLs will), the UI asks for one
// and works once it is given.
func TestWebUI(t *testing.T) {
	b := newBrowser(t)
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Builtins: true})
	leader := c.Leader()
	var reqs []api.JobRequest
	for i := 0; i < 6; i++ {
		reqs = append(reqs, api.JobRequest{Queue: "emails", Plugin: "echo", Payload: json.RawMessage(fmt.Sprintf(`{"echo":"sent mail %d"}`, i)), UniqueKey: fmt.Sprintf("mail-%d", i)})
	}
	for i := 0; i < 2; i++ {
		reqs = append(reqs, api.JobRequest{Queue: "reports", Plugin: "echo", MaxAttempts: 1, Payload: json.RawMessage(`{"fail_attempts":5}`)})
	}
	reqs = append(reqs, api.JobRequest{Queue: "reports", Plugin: "echo", Payload: json.RawMessage(`{"echo":"slow","sleep":"1m"}`)})
	ids := submitMany(t, c.Nodes[1].Client, reqs)
	failedID := ids[6]
	c.Eventually(30*time.Second, "jobs done", func() bool {
		for _, id := range ids[:8] {
			if j, ok := leader.Agent.Store().Get(id); !ok || !j.State.Terminal() {
				return false
			}
		}
		return true
	})
	base := "http://" + c.Nodes[1].Agent.HTTPAddr() + "/ui/"

	b.do("open overview", chromedp.Navigate(base))
	b.until("the failed count", `document.querySelector('[data-card=failed] .v')?.textContent === '2'`)
	b.until("the succeeded count", `document.querySelector('[data-card=succeeded] .v')?.textContent === '6'`)
	b.until("cluster health", `document.querySelector('main').innerText.includes('3 alive of 3')`)
	b.shot("1-overview")

	b.do("open jobs", chromedp.Navigate(base+"#/jobs"))
	b.until("every job listed", `document.querySelectorAll('#jobs-table tr[data-job]').length === 9`)
	b.shot("2-jobs")
	b.do("search by unique key", chromedp.Navigate(base+"#/jobs?search=mail-3"))
	b.until("one job found", `document.querySelectorAll('#jobs-table tr[data-job]').length === 1`)

	b.do("open a job", chromedp.Click(chromedp.CSS(`#jobs-table tr[data-job] a`)))
	b.until("its payload and result", `document.querySelector('#job-payload')?.textContent.includes('sent mail 3') && document.querySelector('#job-result')?.textContent.includes('sent mail 3')`)
	b.shot("3-job")

	b.do("open the failed set", chromedp.Navigate(base+"#/failed"))
	b.until("two failed jobs", `document.querySelectorAll('#jobs-table tr[data-job]').length === 2`)
	b.shot("4-failed")
	b.do("select and retry a failed job",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#jobs-table tr[data-job="%s"] input[type=checkbox]`, failedID))),
		chromedp.Click(chromedp.CSS(`[data-action=retry-selected]`)))
	c.Eventually(30*time.Second, "the clicked job ran again", func() bool {
		j, ok := leader.Agent.Store().Get(failedID)
		return ok && j.Attempt == 2 && j.State.Terminal()
	})
	if j, _ := leader.Agent.Store().Get(ids[7]); j.Attempt != 1 {
		t.Fatalf("the job that was not selected was retried too (attempt %d)", j.Attempt)
	}

	b.do("open queues", chromedp.Navigate(base+"#/queues"))
	b.until("the queues", `document.querySelector('#queues-table tr[data-queue=emails] [data-action=pause]') !== null`)
	b.do("pause emails", chromedp.Click(chromedp.CSS(`#queues-table tr[data-queue=emails] [data-action=pause]`)))
	c.Eventually(30*time.Second, "queue emails paused", func() bool {
		for _, q := range leader.Agent.Store().Queues() {
			if q.Name == "emails" {
				return q.Config.Paused
			}
		}
		return false
	})
	b.until("the paused badge", `document.querySelector('#queues-table tr[data-queue=emails] [data-action=resume]') !== null`)
	b.shot("5-queues")

	b.do("open the running job", chromedp.Navigate(base+"#/jobs/"+ids[8]))
	b.until("the running job", `document.querySelector('.badge.running') !== null`)
	b.shot("6-running-job")

	b.do("open cluster", chromedp.Navigate(base+"#/cluster"))
	b.until("three raft peers and a leader", `document.querySelectorAll('main table')[0]?.querySelectorAll('tbody tr').length === 3 && document.querySelector('.badge.leader') !== null`)
	b.shot("7-cluster")
	b.do("open plugins", chromedp.Navigate(base+"#/plugins"))
	b.until("this node's plugins", `document.querySelector('#plugins-table')?.innerText.includes('echo')`)
	b.shot("8-plugins")

	// With ACLs on, the UI asks for a token and works once given the
	// bootstrap (management) token.
	secure := testcluster.Start(t, testcluster.Options{Nodes: 1, Configure: func(_ int, cfg *config.Config) {
		cfg.ACL.Enabled = true
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	boot, err := secure.Nodes[0].Client.ACLBootstrap(ctx)
	if err != nil {
		t.Fatalf("acl bootstrap: %v", err)
	}
	secret := boot.SecretID
	authed, err := api.NewClient("http://"+secure.Nodes[0].Agent.HTTPAddr(), secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authed.Submit(ctx, api.JobRequest{Queue: "secured", Plugin: "echo", MaxAttempts: 1, Payload: json.RawMessage(`{}`)}); err != nil {
		t.Fatalf("submit with the management token: %v", err)
	}
	b.do("open the UI of the cluster with ACLs", chromedp.Navigate("http://"+secure.Nodes[0].Agent.HTTPAddr()+"/ui/"))
	b.until("the sign-in dialog", `document.querySelector('#login').open`)
	b.shot("9-login")
	b.do("sign in", chromedp.SendKeys(chromedp.CSS(`#login-token`), secret), chromedp.Click(chromedp.CSS(`#login-submit`)))
	b.until("the overview after sign-in", `!document.querySelector('#login').open && document.body.innerText.includes('secured')`)
	if tok, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`sessionStorage.getItem('corral-token')`)); err != nil || tok != secret {
		t.Fatalf("token in sessionStorage: %q, %v", tok, err)
	}
}
