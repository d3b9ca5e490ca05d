package main

// Temporary: pins the dependency set while the packages that use them are written.
import (
	_ "github.com/google/btree"
	_ "github.com/hashicorp/cli"
	_ "github.com/hashicorp/go-hclog"
	_ "github.com/hashicorp/go-metrics"
	_ "github.com/hashicorp/go-metrics/compat"
	_ "github.com/hashicorp/go-metrics/prometheus"
	_ "github.com/hashicorp/go-plugin"
	_ "github.com/hashicorp/hcl/v2"
	_ "github.com/hashicorp/hcl/v2/gohcl"
	_ "github.com/hashicorp/hcl/v2/hclsimple"
	_ "github.com/hashicorp/raft"
	_ "github.com/hashicorp/raft-autopilot"
	_ "github.com/hashicorp/raft-boltdb/v2"
	_ "github.com/hashicorp/serf/serf"
	_ "github.com/mattn/go-isatty"
	_ "github.com/oklog/ulid/v2"
	_ "google.golang.org/grpc"
	_ "google.golang.org/protobuf/proto"
)

func main() {}
