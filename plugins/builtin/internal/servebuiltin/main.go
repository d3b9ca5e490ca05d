// Command servebuiltin stands in for `corral plugin serve NAME` in tests:
// it serves the built-in plugin named by its arguments.
package main

import (
	"fmt"
	"os"

	"github.com/corral-dev/corral/plugins/builtin"
)

func main() {
	if len(os.Args) != 4 || os.Args[1] != "plugin" || os.Args[2] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: servebuiltin plugin serve NAME")
		os.Exit(2)
	}
	if err := builtin.Serve(os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
