package command

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/corral-dev/corral/daemon/api"
)

// MembersCommand is `corral members`.
type MembersCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *MembersCommand) Synopsis() string { return "List cluster members (gossip view)" }

// Help implements cli.Command.
func (c *MembersCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral members [options]

  List the nodes the agent knows through Serf gossip, with their status
  (alive, failed, left) and tags. See "corral operator raft list-peers"
  for the raft view.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *MembersCommand) Run(args []string) int {
	fs := c.flagSet("members", true, c.Help)
	return c.runClient(fs, c.Help(), args, nil, func(ctx context.Context, client *api.Client, _ []string) int {
		members, err := client.Members(ctx)
		if err != nil {
			return c.fail(err)
		}
		return c.output(members, func(w io.Writer) {
			sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
			rows := make([][]string, len(members))
			for i, m := range members {
				rows[i] = []string{m.Name, m.Addr, m.Status, dash(pairs(m.Tags, ","))}
			}
			table(w, []string{"Node", "Address", "Status", "Tags"}, rows)
		})
	})
}

// RaftListPeersCommand is `corral operator raft list-peers`.
type RaftListPeersCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *RaftListPeersCommand) Synopsis() string { return "List the raft peers" }

// Help implements cli.Command.
func (c *RaftListPeersCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral operator raft list-peers [options]

  List the servers of the raft configuration: node, ID, address, whether
  it leads and whether it votes.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *RaftListPeersCommand) Run(args []string) int {
	fs := c.flagSet("operator raft list-peers", true, c.Help)
	return c.runClient(fs, c.Help(), args, nil, func(ctx context.Context, client *api.Client, _ []string) int {
		conf, err := client.RaftConfiguration(ctx)
		if err != nil {
			return c.fail(err)
		}
		return c.output(conf, func(w io.Writer) {
			rows := make([][]string, len(conf.Servers))
			for i, s := range conf.Servers {
				state := "follower"
				if s.Leader {
					state = "leader"
				}
				rows[i] = []string{dash(s.Node), s.ID, s.Address, state, strconv.FormatBool(s.Voter)}
			}
			table(w, []string{"Node", "ID", "Address", "State", "Voter"}, rows)
		})
	})
}

// RaftRemovePeerCommand is `corral operator raft remove-peer`.
type RaftRemovePeerCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *RaftRemovePeerCommand) Synopsis() string { return "Remove a peer from raft" }

// Help implements cli.Command.
func (c *RaftRemovePeerCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral operator raft remove-peer [options] -id=ID

  Remove the server with raft ID from the raft configuration, e.g. a dead
  server that dead-server cleanup keeps for quorum safety. Get IDs from
  "corral operator raft list-peers".

Options:

  -id=<id>
    The raft ID of the server to remove. Required.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *RaftRemovePeerCommand) Run(args []string) int {
	var id string
	fs := c.flagSet("operator raft remove-peer", true, c.Help)
	fs.StringVar(&id, "id", "", "")
	return c.runClient(fs, c.Help(), args, nil, func(ctx context.Context, client *api.Client, _ []string) int {
		if id == "" {
			return c.usageError(c.Help(), "-id is required")
		}
		if err := client.RemovePeer(ctx, id); err != nil {
			return c.fail(err)
		}
		out := map[string]string{"removed": id}
		return c.output(out, func(w io.Writer) { fmt.Fprintf(w, "Removed peer with id %s\n", id) })
	})
}

// StatusCommand is `corral status`.
type StatusCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *StatusCommand) Synopsis() string { return "Show this node's raft status" }

// Help implements cli.Command.
func (c *StatusCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral status [options]

  Show the agent's node: raft state, leader, term, last and applied index,
  then every raft statistic.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *StatusCommand) Run(args []string) int {
	fs := c.flagSet("status", true, c.Help)
	return c.runClient(fs, c.Help(), args, nil, func(ctx context.Context, client *api.Client, _ []string) int {
		self, err := client.Self(ctx)
		if err != nil {
			return c.fail(err)
		}
		return c.output(self, func(w io.Writer) {
			leader := self.Leader
			if leader == "" {
				leader = "(none)"
			}
			fields(w, []field{
				{"Node", self.Node},
				{"ID", self.ID},
				{"Version", self.Version},
				{"State", self.State},
				{"Leader", leader},
				{"Term", strconv.FormatUint(self.Term, 10)},
				{"Last Index", strconv.FormatUint(self.LastIndex, 10)},
				{"Applied Index", strconv.FormatUint(self.AppliedIndex, 10)},
			})
			if len(self.Stats) == 0 {
				return
			}
			fmt.Fprintln(w, "\nStats")
			keys := make([]string, 0, len(self.Stats))
			for k := range self.Stats {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			stats := make([]field, len(keys))
			for i, k := range keys {
				stats[i] = field{k, dash(self.Stats[k])}
			}
			fields(w, stats)
		})
	})
}

// LeaveCommand is `corral leave`.
type LeaveCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *LeaveCommand) Synopsis() string { return "Make the agent leave the cluster and stop" }

// Help implements cli.Command.
func (c *LeaveCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral leave [options]

  Make the agent at -address leave the cluster gracefully (handing over
  leadership first if it leads) and shut down.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *LeaveCommand) Run(args []string) int {
	fs := c.flagSet("leave", true, c.Help)
	return c.runClient(fs, c.Help(), args, nil, func(ctx context.Context, client *api.Client, _ []string) int {
		if err := client.Leave(ctx); err != nil {
			return c.fail(err)
		}
		out := map[string]string{"address": client.Address(), "status": "leaving"}
		return c.output(out, func(w io.Writer) {
			fmt.Fprintf(w, "Agent at %s is leaving the cluster and will shut down\n", client.Address())
		})
	})
}
