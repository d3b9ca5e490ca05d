// Package command implements the corral command line: the agent and the
// client commands of DESIGN §7, one type per command, built on
// github.com/hashicorp/cli. cmd/corral's main only calls Run.
package command

import (
	"fmt"
	"os"

	"github.com/corral-dev/corral/daemon"
	"github.com/hashicorp/cli"
	"github.com/mattn/go-isatty"
)

// Run runs the command line args (without the program name) and returns
// the process exit code.
func Run(args []string) int {
	m := Meta{
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		Getenv:      os.Getenv,
		Interactive: isatty.IsTerminal(os.Stderr.Fd()),
		// Confirmation prompts read stdin.
		StdinTerminal: isatty.IsTerminal(os.Stdin.Fd()),
	}
	return run(args, m)
}

// run is Run with the streams and environment given.
func run(args []string, m Meta) int {
	c := &cli.CLI{
		Name:        "corral",
		Args:        args,
		Commands:    commands(m),
		Version:     "corral " + daemon.Version,
		HelpWriter:  m.Stdout,
		ErrorWriter: m.Stderr,
		// Shell completion for bash and zsh: `corral -autocomplete-install`
		// adds it to the shell's rc file (subcommands and their flags).
		Autocomplete:          true,
		AutocompleteInstall:   "autocomplete-install",
		AutocompleteUninstall: "autocomplete-uninstall",
	}
	code, err := c.Run()
	if err != nil {
		fmt.Fprintf(m.Stderr, "error: %s\n", oneLine(err.Error()))
		return ExitError
	}
	if code == 127 { // unknown command: cli printed the help
		return ExitError
	}
	return code
}

// commands is the command table.
func commands(m Meta) map[string]cli.CommandFactory {
	cmd := func(c cli.Command) cli.CommandFactory {
		return func() (cli.Command, error) { return c, nil }
	}
	return map[string]cli.CommandFactory{
		"agent": cmd(&AgentCommand{Meta: m}),

		"job":        cmd(&groupCommand{synopsis: "Submit, inspect and control jobs", help: jobHelp}),
		"job submit": cmd(&JobSubmitCommand{Meta: m}),
		"job plan":   cmd(&JobPlanCommand{Meta: m}),
		"job status": cmd(&JobStatusCommand{Meta: m}),
		"job list":   cmd(&JobListCommand{Meta: m}),
		"job wait":   cmd(&JobWaitCommand{Meta: m}),
		"job logs":   cmd(&JobLogsCommand{Meta: m}),
		"job cancel": cmd(&JobCancelCommand{Meta: m}),
		"job retry":  cmd(&JobRetryCommand{Meta: m}),

		"queue":        cmd(&groupCommand{synopsis: "List, pause, resume, rate-limit and delete queues", help: queueHelp}),
		"queue list":   cmd(&QueueListCommand{Meta: m}),
		"queue pause":  cmd(&QueuePauseCommand{Meta: m, pause: true}),
		"queue resume": cmd(&QueuePauseCommand{Meta: m}),
		"queue set":    cmd(&QueueSetCommand{Meta: m}),
		"queue delete": cmd(&QueueDeleteCommand{Meta: m}),

		"periodic":         cmd(&groupCommand{synopsis: "Jobs on a cron schedule", help: periodicHelp}),
		"periodic list":    cmd(&PeriodicListCommand{Meta: m}),
		"periodic apply":   cmd(&PeriodicApplyCommand{Meta: m}),
		"periodic delete":  cmd(&PeriodicDeleteCommand{Meta: m}),
		"periodic run-now": cmd(&PeriodicRunCommand{Meta: m}),

		"members": cmd(&MembersCommand{Meta: m}),

		"operator":                  cmd(&groupCommand{synopsis: "Cluster operator tools", help: operatorHelp}),
		"operator raft":             cmd(&groupCommand{synopsis: "Inspect and change the raft peer set", help: raftHelp}),
		"operator raft list-peers":  cmd(&RaftListPeersCommand{Meta: m}),
		"operator raft remove-peer": cmd(&RaftRemovePeerCommand{Meta: m}),
		"operator snapshot":         cmd(&groupCommand{synopsis: "Save, restore and inspect snapshots of the cluster state", help: snapshotHelp}),
		"operator snapshot save":    cmd(&SnapshotSaveCommand{Meta: m}),
		"operator snapshot restore": cmd(&SnapshotRestoreCommand{Meta: m}),
		"operator snapshot inspect": cmd(&SnapshotInspectCommand{Meta: m}),
		"reload":                    cmd(&ReloadCommand{Meta: m}),

		"status": cmd(&StatusCommand{Meta: m}),
		"leave":  cmd(&LeaveCommand{Meta: m}),

		"plugin":       cmd(&groupCommand{synopsis: "List and serve worker plugins", help: pluginHelp}),
		"plugin list":  cmd(&PluginListCommand{Meta: m}),
		"plugin serve": cmd(&PluginServeCommand{Meta: m}),

		"acl":               cmd(&groupCommand{synopsis: "Manage ACL tokens and policies", help: aclHelp}),
		"acl bootstrap":     cmd(&ACLBootstrapCommand{Meta: m}),
		"acl policy":        cmd(&groupCommand{synopsis: "Manage ACL policies", help: aclPolicyHelp}),
		"acl policy apply":  cmd(&ACLPolicyApplyCommand{Meta: m}),
		"acl policy list":   cmd(&ACLPolicyListCommand{Meta: m}),
		"acl policy delete": cmd(&ACLPolicyDeleteCommand{Meta: m}),
		"acl token":         cmd(&groupCommand{synopsis: "Manage ACL tokens", help: aclTokenHelp}),
		"acl token create":  cmd(&ACLTokenCreateCommand{Meta: m}),
		"acl token list":    cmd(&ACLTokenListCommand{Meta: m}),
		"acl token delete":  cmd(&ACLTokenDeleteCommand{Meta: m}),

		"tls":             cmd(&groupCommand{synopsis: "Create the cluster's CA and certificates", help: tlsHelp}),
		"tls ca":          cmd(&groupCommand{synopsis: "Create the cluster CA", help: tlsHelp}),
		"tls ca create":   cmd(&TLSCACreateCommand{Meta: m}),
		"tls cert":        cmd(&groupCommand{synopsis: "Create certificates", help: tlsHelp}),
		"tls cert create": cmd(&TLSCertCreateCommand{Meta: m}),

		"bench":   cmd(&BenchCommand{Meta: m}),
		"keygen":  cmd(&KeygenCommand{Meta: m}),
		"version": cmd(&VersionCommand{Meta: m}),
	}
}

// groupCommand is a command that only groups subcommands ("job",
// "queue" ...): run alone it prints its help and fails.
type groupCommand struct {
	synopsis, help string
}

func (c *groupCommand) Help() string     { return c.help }
func (c *groupCommand) Synopsis() string { return c.synopsis }
func (c *groupCommand) Run([]string) int { return cli.RunResultHelp }

const jobHelp = `
Usage: corral job <subcommand> [options] [args]

  Submit jobs, follow them and control them. Run a subcommand with -h for
  its options.
`

const queueHelp = `
Usage: corral queue <subcommand> [options] [args]

  List queues, pause or resume dispatching from one, set its rate limit,
  or delete an empty one.
`

const operatorHelp = `
Usage: corral operator <subcommand> [options] [args]

  Tools for cluster operators.
`

const raftHelp = `
Usage: corral operator raft <subcommand> [options]

  Inspect the raft peer set or remove a dead peer from it.
`

const pluginHelp = `
Usage: corral plugin <subcommand> [options] [args]

  List the worker plugins of a node, or serve a built-in plugin.
`
