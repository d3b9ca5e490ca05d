package builtin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/corral-dev/corral/plugins/sdk"
)

// maxHTTPResult bounds the response body returned as the job's result.
const maxHTTPResult = 64 << 10

// httpPayload is the http plugin's payload.
type httpPayload struct {
	// Method defaults to GET.
	Method string `json:"method"`
	// URL is an http or https URL.
	URL string `json:"url"`
	// Headers are added to the request.
	Headers map[string]string `json:"headers"`
	// Body is sent as the request body.
	Body string `json:"body"`
	// Timeout bounds the request (a duration like "10s"); the job's own
	// timeout applies as well.
	Timeout string `json:"timeout"`
}

// httpWorker makes one HTTP request per job.
type httpWorker struct{}

// Info implements sdk.Worker.
func (*httpWorker) Info() sdk.Info {
	return sdk.Info{Name: "http", Version: Version, Description: "makes an HTTP request; non-2xx fails the attempt; the body is the result"}
}

// Run implements sdk.Worker.
func (*httpWorker) Run(ctx context.Context, job sdk.Job, r sdk.Reporter) ([]byte, error) {
	var p httpPayload
	if err := decodePayload(job.Payload, &p); err != nil {
		return nil, err
	}
	req, err := p.request(ctx)
	if err != nil {
		return nil, sdk.NonRetryable(err)
	}
	if p.Timeout != "" {
		d, _ := time.ParseDuration(p.Timeout) // validated by request
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
		req = req.WithContext(ctx)
	}

	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, p.URL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPResult+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading response: %w", req.Method, p.URL, err)
	}
	r.Logf("%s %s -> %s in %s", req.Method, p.URL, resp.Status, time.Since(start).Round(time.Millisecond))
	if len(body) > maxHTTPResult {
		body = body[:maxHTTPResult]
		r.Logf("response body truncated to %d bytes", maxHTTPResult)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%s %s: status %s: %s", req.Method, p.URL, resp.Status, snippet(body))
	}
	return body, nil
}

// request validates the payload and builds the request.
func (p *httpPayload) request(ctx context.Context) (*http.Request, error) {
	method := strings.ToUpper(p.Method)
	if method == "" {
		method = http.MethodGet
	}
	u, err := url.Parse(p.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid payload: url %q is not an http(s) URL", p.URL)
	}
	if p.Timeout != "" {
		if d, err := time.ParseDuration(p.Timeout); err != nil || d <= 0 {
			return nil, fmt.Errorf("invalid payload: timeout %q is not a duration like \"10s\"", p.Timeout)
		}
	}
	var body io.Reader
	if p.Body != "" {
		body = strings.NewReader(p.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("invalid payload: %w", err)
	}
	for k, v := range p.Headers {
		req.Header.Set(k, v)
	}
	return req, nil
}

// snippet returns the start of a response body for an error message.
func snippet(body []byte) string {
	const max = 200
	s := strings.TrimSpace(string(body))
	if len(s) > max {
		s = s[:max] + "..."
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
