// Command corral is the Corral daemon and its command line client.
package main

import (
	"os"

	"github.com/corral-dev/corral/daemon/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
