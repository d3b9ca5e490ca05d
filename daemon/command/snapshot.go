package command

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/snapshot"
)

const snapshotHelp = `
Usage: corral operator snapshot <subcommand> [options] FILE

  Save the cluster's whole state (every job and queue) to a file, restore
  it into this or another cluster, or inspect a saved file.
`

// SnapshotSaveCommand is `corral operator snapshot save FILE`.
type SnapshotSaveCommand struct{ Meta }

// Synopsis implements cli.Command.
func (c *SnapshotSaveCommand) Synopsis() string { return "Save the cluster state to a file" }

// Help implements cli.Command.
func (c *SnapshotSaveCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral operator snapshot save [options] FILE

  Save a point-in-time snapshot of the whole cluster state (jobs, queues)
  to FILE, taken on the leader (any node forwards the request). The file
  is verified after the download and only then moved into place.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *SnapshotSaveCommand) Run(args []string) int {
	fs := c.flagSet("operator snapshot save", true, c.Help)
	return c.runClient(fs, c.Help(), args, []string{"FILE"}, func(ctx context.Context, client *api.Client, pos []string) int {
		file := pos[0]
		tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".tmp-*")
		if err != nil {
			return c.fail(fmt.Errorf("create %s: %w", file, err))
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		rc, err := client.SnapshotSave(ctx)
		if err != nil {
			return c.fail(err)
		}
		_, err = io.Copy(tmp, rc)
		rc.Close()
		if err != nil {
			return c.fail(fmt.Errorf("download snapshot: %w", err))
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return c.fail(fmt.Errorf("verify snapshot: %w", err))
		}
		info, err := snapshot.Inspect(tmp)
		if err != nil {
			return c.fail(fmt.Errorf("the downloaded snapshot does not verify: %w", err))
		}
		if err := tmp.Close(); err != nil {
			return c.fail(fmt.Errorf("write %s: %w", file, err))
		}
		if err := os.Rename(tmp.Name(), file); err != nil {
			return c.fail(fmt.Errorf("write %s: %w", file, err))
		}
		return c.output(info, func(w io.Writer) {
			fmt.Fprintf(w, "Saved snapshot to %s (index %d, %d jobs, %d queues)\n", file, info.Index, info.State.Jobs, len(info.State.Queues))
		})
	})
}

// SnapshotRestoreCommand is `corral operator snapshot restore FILE`.
type SnapshotRestoreCommand struct{ Meta }

// Synopsis implements cli.Command.
func (c *SnapshotRestoreCommand) Synopsis() string { return "Restore the cluster state from a file" }

// Help implements cli.Command.
func (c *SnapshotRestoreCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral operator snapshot restore [options] FILE

  Replace the whole cluster state with the snapshot in FILE (made by
  "corral operator snapshot save"). The leader verifies the file completely
  first: a corrupt or truncated file is refused and nothing changes. The
  cluster's own raft peers are kept, so a snapshot can be restored into a
  different cluster. Jobs running when the restore happens lose their
  leases and run again according to the restored state.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *SnapshotRestoreCommand) Run(args []string) int {
	fs := c.flagSet("operator snapshot restore", true, c.Help)
	return c.runClient(fs, c.Help(), args, []string{"FILE"}, func(ctx context.Context, client *api.Client, pos []string) int {
		f, err := os.Open(pos[0])
		if err != nil {
			return c.fail(fmt.Errorf("open snapshot: %w", err))
		}
		defer f.Close()
		if err := client.SnapshotRestore(ctx, f); err != nil {
			return c.fail(err)
		}
		return c.output(map[string]any{"restored": pos[0]}, func(w io.Writer) {
			fmt.Fprintf(w, "Restored snapshot %s\n", pos[0])
		})
	})
}

// SnapshotInspectCommand is `corral operator snapshot inspect FILE`.
type SnapshotInspectCommand struct{ Meta }

// Synopsis implements cli.Command.
func (c *SnapshotInspectCommand) Synopsis() string { return "Verify and describe a snapshot file" }

// Help implements cli.Command.
func (c *SnapshotInspectCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral operator snapshot inspect [-json] FILE

  Verify a snapshot file completely (checksums and every record) without
  contacting an agent, and show its raft index and term, when it was made,
  and its queues with their jobs per state.
`)
}

// Run implements cli.Command.
func (c *SnapshotInspectCommand) Run(args []string) int {
	fs := c.flagSet("operator snapshot inspect", false, c.Help)
	pos, err := parse(fs, args)
	if err != nil {
		return ExitError
	}
	if len(pos) != 1 {
		return c.usageError(c.Help(), "expected FILE, got %d argument(s)", len(pos))
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return c.fail(fmt.Errorf("open snapshot: %w", err))
	}
	defer f.Close()
	info, err := snapshot.Inspect(f)
	if err != nil {
		return c.fail(err)
	}
	return c.output(info, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "ID\t%s\nIndex\t%d\nTerm\t%d\nCreated\t%s\nState bytes\t%d\nJobs\t%d\n\n",
			info.ID, info.Index, info.Term, info.Created.Format("2006-01-02 15:04:05Z07:00"), info.Size, info.State.Jobs)
		fmt.Fprintln(tw, "Queue\tPaused\tBlocked\tScheduled\tQueued\tRunning\tSucceeded\tFailed\tCancelled")
		for _, q := range info.State.Queues {
			fmt.Fprintf(tw, "%s\t%t", q.Name, q.Config.Paused)
			for _, n := range []string{"blocked", "scheduled", "queued", "running", "succeeded", "failed", "cancelled"} {
				for st, v := range q.Counts {
					if st.String() == n {
						fmt.Fprintf(tw, "\t%d", v)
					}
				}
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	})
}

// ReloadCommand is `corral reload`.
type ReloadCommand struct{ Meta }

// Synopsis implements cli.Command.
func (c *ReloadCommand) Synopsis() string { return "Reload the agent's config and plugins (as SIGHUP)" }

// Help implements cli.Command.
func (c *ReloadCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral reload [options]

  Make the agent at -address do what SIGHUP does: re-read its config files,
  apply a new log_level, rescan plugin_dir (start new plugins; replace
  changed ones and stop removed ones once their running jobs finish) and
  apply new plugin settings. Running jobs are not interrupted. Options that
  need an agent restart are listed.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *ReloadCommand) Run(args []string) int {
	fs := c.flagSet("reload", true, c.Help)
	return c.runClient(fs, c.Help(), args, nil, func(ctx context.Context, client *api.Client, _ []string) int {
		res, err := client.Reload(ctx)
		if err != nil {
			return c.fail(err)
		}
		return c.output(res, func(w io.Writer) {
			fmt.Fprintf(w, "Reloaded %s (log level %s)\n", res.Node, res.LogLevel)
			for _, l := range []struct {
				what  string
				names []string
			}{{"started", res.Started}, {"restarting when idle", res.Restarted}, {"removed when idle", res.Removed}, {"needs an agent restart", res.NeedRestart}} {
				if len(l.names) > 0 {
					fmt.Fprintf(w, "  %s: %s\n", l.what, strings.Join(l.names, ", "))
				}
			}
		})
	})
}
