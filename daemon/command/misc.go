package command

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/corral-dev/corral/daemon"
	"github.com/corral-dev/corral/daemon/config"
)

// KeygenCommand is `corral keygen`.
type KeygenCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *KeygenCommand) Synopsis() string { return "Generate a gossip encryption key" }

// Help implements cli.Command.
func (c *KeygenCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral keygen

  Print a new random 32-byte key, base64-encoded, for serf { encrypt = ... }.
  Every node of a cluster needs the same key.
`)
}

// Run implements cli.Command.
func (c *KeygenCommand) Run(args []string) int {
	fs := c.flagSet("keygen", false, c.Help)
	pos, err := parse(fs, args)
	if err != nil {
		return ExitError
	}
	if len(pos) != 0 {
		return c.usageError(c.Help(), "keygen takes no arguments")
	}
	key := make([]byte, config.GossipKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return c.fail(fmt.Errorf("read random bytes: %w", err))
	}
	fmt.Fprintln(c.Stdout, base64.StdEncoding.EncodeToString(key))
	return ExitOK
}

// VersionCommand is `corral version`.
type VersionCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *VersionCommand) Synopsis() string { return "Print the corral version" }

// Help implements cli.Command.
func (c *VersionCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral version [-json]

  Print the version of this corral binary. It is set at build time with
  -ldflags "-X github.com/corral-dev/corral/daemon.Version=1.2.3".
`)
}

// Run implements cli.Command.
func (c *VersionCommand) Run(args []string) int {
	fs := c.flagSet("version", false, c.Help)
	fs.BoolVar(&c.json, "json", false, "")
	pos, err := parse(fs, args)
	if err != nil {
		return ExitError
	}
	if len(pos) != 0 {
		return c.usageError(c.Help(), "version takes no arguments")
	}
	out := map[string]string{"version": daemon.Version}
	return c.output(out, func(w io.Writer) { fmt.Fprintf(w, "corral %s\n", daemon.Version) })
}
