package command

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/plugins/builtin"
)

// PluginListCommand is `corral plugin list`.
type PluginListCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *PluginListCommand) Synopsis() string { return "List the worker plugins of a node" }

// Help implements cli.Command.
func (c *PluginListCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral plugin list [options]

  List the worker plugins of the agent's node: built-in and from
  plugin_dir, with their status (ready, restarting, failed with the
  reason, or skipped for a plugin_dir file that is not executable), the
  plugin process's PID, and running jobs out of the plugin's concurrency.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *PluginListCommand) Run(args []string) int {
	fs := c.flagSet("plugin list", true, c.Help)
	return c.runClient(fs, c.Help(), args, nil, func(ctx context.Context, client *api.Client, _ []string) int {
		list, err := client.Plugins(ctx)
		if err != nil {
			return c.fail(err)
		}
		return c.output(list, func(w io.Writer) {
			if len(list.Plugins) == 0 {
				fmt.Fprintf(w, "No plugins on node %s\n", list.Node)
				return
			}
			rows := make([][]string, len(list.Plugins))
			for i, p := range list.Plugins {
				source := "builtin"
				if !p.Builtin {
					source = dash(p.Path)
				}
				status := p.Status
				if p.Error != "" {
					status += ": " + oneLine(p.Error)
				}
				pid := "-"
				if p.PID > 0 {
					pid = strconv.Itoa(p.PID)
				}
				running := fmt.Sprintf("%d/%d", p.Running, p.Concurrency)
				if p.Status == "failed" || p.Status == "skipped" {
					running = "-"
				}
				rows[i] = []string{p.Name, dash(p.Version), status, pid, running, source, dash(p.Description)}
			}
			table(w, []string{"Name", "Version", "Status", "PID", "Running", "Source", "Description"}, rows)
		})
	})
}

// PluginServeCommand is `corral plugin serve`: the daemon re-executes the
// corral binary with it to run a built-in plugin over go-plugin.
type PluginServeCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *PluginServeCommand) Synopsis() string { return "Serve a built-in plugin (used by the agent)" }

// Help implements cli.Command.
func (c *PluginServeCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral plugin serve NAME

  Serve the built-in worker plugin NAME (` + strings.Join(builtin.Names(), ", ") + `) over the
  plugin protocol. The agent runs this itself; it is not meant to be run by
  hand.
`)
}

// Run implements cli.Command.
func (c *PluginServeCommand) Run(args []string) int {
	fs := c.flagSet("plugin serve", false, c.Help)
	pos, err := parse(fs, args)
	if err != nil {
		return ExitError
	}
	if len(pos) != 1 {
		return c.usageError(c.Help(), "expected NAME, got %d argument(s)", len(pos))
	}
	if err := builtin.Serve(pos[0]); err != nil {
		return c.fail(fmt.Errorf("plugin %s: %w", pos[0], err))
	}
	return ExitOK
}
