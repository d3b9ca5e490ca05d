package command

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/corral-dev/corral/daemon/api"
)

const aclHelp = `
Usage: corral acl <subcommand> [options]

  Manage access control: bootstrap the first management token, policies
  (HCL rules per queue prefix, operator and agent) and tokens.

Subcommands:

  bootstrap       Create the first management token (once per cluster)
  policy apply    Create or replace a policy from an HCL rules file
  policy list     List policies
  policy delete   Delete a policy
  token create    Create a token with policies (or -management)
  token list      List tokens (secrets are never shown again)
  token delete    Delete a token by accessor ID
`

const aclPolicyHelp = `
Usage: corral acl policy <apply|list|delete> [options]

  Manage ACL policies. Rules are HCL:

    queue "" { policy = "read" }           # every queue
    queue "billing-" { policy = "write" }   # queues named billing-*
    operator = "read"                       # raft peers; write: remove peers, pause queues
    agent = "read"                          # members, plugins, metrics; write: leave

  The longest matching queue prefix decides; at equal length deny wins;
  nothing matching is deny.
`

const aclTokenHelp = `
Usage: corral acl token <create|list|delete> [options]

  Manage ACL tokens.
`

// ACLBootstrapCommand is `corral acl bootstrap`.
type ACLBootstrapCommand struct{ Meta }

// Synopsis implements cli.Command.
func (c *ACLBootstrapCommand) Synopsis() string { return "Create the first management token" }

// Help implements cli.Command.
func (c *ACLBootstrapCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral acl bootstrap [options]

  Create the cluster's first management token and print it. It works once
  per cluster: keep the secret safe (set it as CORRAL_TOKEN) and use it to
  create policies and less powerful tokens.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *ACLBootstrapCommand) Run(args []string) int {
	fs := c.flagSet("acl bootstrap", true, c.Help)
	return c.runClient(fs, c.Help(), args, nil, func(ctx context.Context, client *api.Client, _ []string) int {
		tok, err := client.ACLBootstrap(ctx)
		if err != nil {
			return c.fail(err)
		}
		return c.output(tok, func(w io.Writer) { printToken(w, tok) })
	})
}

// ACLPolicyApplyCommand is `corral acl policy apply`.
type ACLPolicyApplyCommand struct{ Meta }

// Synopsis implements cli.Command.
func (c *ACLPolicyApplyCommand) Synopsis() string { return "Create or replace an ACL policy" }

// Help implements cli.Command.
func (c *ACLPolicyApplyCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral acl policy apply [options] NAME FILE

  Create or replace the policy NAME with the HCL rules in FILE (- reads
  stdin). Needs a management token.

Options:

  -description=<text>
    A description of the policy.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *ACLPolicyApplyCommand) Run(args []string) int {
	fs := c.flagSet("acl policy apply", true, c.Help)
	desc := fs.String("description", "", "")
	return c.runClient(fs, c.Help(), args, []string{"NAME", "FILE"}, func(ctx context.Context, client *api.Client, pos []string) int {
		var rules []byte
		var err error
		if pos[1] == "-" {
			rules, err = io.ReadAll(io.LimitReader(c.Stdin, 1<<20))
		} else {
			rules, err = os.ReadFile(pos[1])
		}
		if err != nil {
			return c.fail(fmt.Errorf("read rules: %w", err))
		}
		p, err := client.ACLPolicyApply(ctx, api.ACLPolicy{Name: pos[0], Description: *desc, Rules: string(rules)})
		if err != nil {
			return c.fail(err)
		}
		return c.output(p, func(w io.Writer) { fmt.Fprintf(w, "Policy %s applied\n", p.Name) })
	})
}

// ACLPolicyListCommand is `corral acl policy list`.
type ACLPolicyListCommand struct{ Meta }

// Synopsis implements cli.Command.
func (c *ACLPolicyListCommand) Synopsis() string { return "List ACL policies" }

// Help implements cli.Command.
func (c *ACLPolicyListCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral acl policy list [options]

  List the policies. Needs a management token.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *ACLPolicyListCommand) Run(args []string) int {
	fs := c.flagSet("acl policy list", true, c.Help)
	return c.runClient(fs, c.Help(), args, nil, func(ctx context.Context, client *api.Client, _ []string) int {
		list, err := client.ACLPolicies(ctx)
		if err != nil {
			return c.fail(err)
		}
		return c.output(list, func(w io.Writer) {
			if len(list) == 0 {
				fmt.Fprintln(w, "No policies")
				return
			}
			rows := make([][]string, len(list))
			for i, p := range list {
				rows[i] = []string{p.Name, p.Description, oneLine(p.Rules)}
			}
			table(w, []string{"Name", "Description", "Rules"}, rows)
		})
	})
}

// ACLPolicyDeleteCommand is `corral acl policy delete`.
type ACLPolicyDeleteCommand struct{ Meta }

// Synopsis implements cli.Command.
func (c *ACLPolicyDeleteCommand) Synopsis() string { return "Delete an ACL policy" }

// Help implements cli.Command.
func (c *ACLPolicyDeleteCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral acl policy delete [options] NAME

  Delete the policy NAME; tokens that name it lose what it granted.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *ACLPolicyDeleteCommand) Run(args []string) int {
	fs := c.flagSet("acl policy delete", true, c.Help)
	return c.runClient(fs, c.Help(), args, []string{"NAME"}, func(ctx context.Context, client *api.Client, pos []string) int {
		if err := client.ACLPolicyDelete(ctx, pos[0]); err != nil {
			return c.fail(err)
		}
		return c.output(map[string]string{"deleted": pos[0]}, func(w io.Writer) { fmt.Fprintf(w, "Policy %s deleted\n", pos[0]) })
	})
}

// ACLTokenCreateCommand is `corral acl token create`.
type ACLTokenCreateCommand struct{ Meta }

// Synopsis implements cli.Command.
func (c *ACLTokenCreateCommand) Synopsis() string { return "Create an ACL token" }

// Help implements cli.Command.
func (c *ACLTokenCreateCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral acl token create [options]

  Create a token and print its accessor and secret IDs. The secret is
  shown only here. Needs a management token.

Options:

  -policy=<name>
    A policy the token gets; repeat for several.

  -management
    Make a management token (may do everything).

  -description=<text>
    A description of the token.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *ACLTokenCreateCommand) Run(args []string) int {
	fs := c.flagSet("acl token create", true, c.Help)
	var policies listFlag
	fs.Var(&policies, "policy", "")
	mgmt := fs.Bool("management", false, "")
	desc := fs.String("description", "", "")
	return c.runClient(fs, c.Help(), args, nil, func(ctx context.Context, client *api.Client, _ []string) int {
		if len(policies) == 0 && !*mgmt {
			return c.usageError(c.Help(), "give at least one -policy, or -management")
		}
		tok, err := client.ACLTokenCreate(ctx, api.ACLTokenRequest{Description: *desc, Policies: policies, Management: *mgmt})
		if err != nil {
			return c.fail(err)
		}
		return c.output(tok, func(w io.Writer) { printToken(w, tok) })
	})
}

// ACLTokenListCommand is `corral acl token list`.
type ACLTokenListCommand struct{ Meta }

// Synopsis implements cli.Command.
func (c *ACLTokenListCommand) Synopsis() string { return "List ACL tokens" }

// Help implements cli.Command.
func (c *ACLTokenListCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral acl token list [options]

  List the tokens by accessor ID (secrets are never shown). Needs a
  management token.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *ACLTokenListCommand) Run(args []string) int {
	fs := c.flagSet("acl token list", true, c.Help)
	return c.runClient(fs, c.Help(), args, nil, func(ctx context.Context, client *api.Client, _ []string) int {
		list, err := client.ACLTokens(ctx)
		if err != nil {
			return c.fail(err)
		}
		return c.output(list, func(w io.Writer) {
			rows := make([][]string, len(list))
			for i, t := range list {
				rows[i] = []string{t.AccessorID, t.Description, strings.Join(t.Policies, ","), strconv.FormatBool(t.Management)}
			}
			table(w, []string{"Accessor ID", "Description", "Policies", "Management"}, rows)
		})
	})
}

// ACLTokenDeleteCommand is `corral acl token delete`.
type ACLTokenDeleteCommand struct{ Meta }

// Synopsis implements cli.Command.
func (c *ACLTokenDeleteCommand) Synopsis() string { return "Delete an ACL token" }

// Help implements cli.Command.
func (c *ACLTokenDeleteCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral acl token delete [options] ACCESSOR_ID

  Delete the token with that accessor ID. The last management token
  cannot be deleted.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *ACLTokenDeleteCommand) Run(args []string) int {
	fs := c.flagSet("acl token delete", true, c.Help)
	return c.runClient(fs, c.Help(), args, []string{"ACCESSOR_ID"}, func(ctx context.Context, client *api.Client, pos []string) int {
		if err := client.ACLTokenDelete(ctx, pos[0]); err != nil {
			return c.fail(err)
		}
		return c.output(map[string]string{"deleted": pos[0]}, func(w io.Writer) { fmt.Fprintf(w, "Token %s deleted\n", pos[0]) })
	})
}

// printToken prints a token, with its secret when the answer has it.
func printToken(w io.Writer, t *api.ACLToken) {
	fmt.Fprintf(w, "AccessorID:  %s\n", t.AccessorID)
	if t.SecretID != "" {
		fmt.Fprintf(w, "SecretID:    %s\n", t.SecretID)
	}
	if t.Description != "" {
		fmt.Fprintf(w, "Description: %s\n", t.Description)
	}
	fmt.Fprintf(w, "Policies:    %s\n", strings.Join(t.Policies, ", "))
	fmt.Fprintf(w, "Management:  %t\n", t.Management)
}
