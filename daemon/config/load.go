package config

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Load decodes the HCL files named by paths, in order, over a copy of base
// (Default() when base is nil) and returns the result. A path is a file or a
// directory; a directory contributes its *.hcl files in name order. A file
// whose name ends in .json is read as HCL's JSON syntax.
//
// Later files override earlier ones attribute by attribute; tags, plugin and
// queue blocks merge by key. Unknown keys, bad types and bad durations fail
// with an error naming file:line and the key. Load does not call Validate:
// flags usually come on top.
func Load(base *Config, paths ...string) (*Config, error) {
	if base == nil {
		base = Default()
	}
	c := base.Clone()
	files, err := expandPaths(paths)
	if err != nil {
		return nil, err
	}
	parser := hclparse.NewParser()
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		var f *hcl.File
		var diags hcl.Diagnostics
		if strings.HasSuffix(path, ".json") {
			f, diags = parser.ParseJSON(src, path)
		} else {
			f, diags = parser.ParseHCL(relaxOneLineBlocks(src, path), path)
		}
		if !diags.HasErrors() {
			diags = decodeFile(f.Body, c)
		}
		if diags.HasErrors() {
			fixPositions(diags, path, src)
			return nil, diagError(diags)
		}
	}
	return c, nil
}

// expandPaths turns files and directories into the ordered list of files
// to read.
func expandPaths(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("read config dir: %w", err)
		}
		// os.ReadDir returns entries sorted by name.
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".hcl") {
				continue
			}
			files = append(files, filepath.Join(p, e.Name()))
		}
	}
	return files, nil
}

// setter decodes one attribute expression into its Config field.
type setter func(expr hcl.Expression, key string) hcl.Diagnostics

// decodeFile decodes one file's body into c.
func decodeFile(body hcl.Body, c *Config) hcl.Diagnostics {
	top := map[string]setter{
		"node_name":      stringAttr(&c.NodeName),
		"data_dir":       stringAttr(&c.DataDir),
		"bind_addr":      stringAttr(&c.BindAddr),
		"advertise_addr": stringAttr(&c.AdvertiseAddr),
		"log_level":      stringAttr(&c.LogLevel),
		"plugin_dir":     stringAttr(&c.PluginDir),
		"enable_debug":   boolAttr(&c.EnableDebug),
	}
	single := map[string]map[string]setter{
		"ports": {
			"http": intAttr(&c.Ports.HTTP),
			"raft": intAttr(&c.Ports.Raft),
			"serf": intAttr(&c.Ports.Serf),
		},
		"server": {
			"bootstrap_expect":          intAttr(&c.Server.BootstrapExpect),
			"retry_join":                stringListAttr(&c.Server.RetryJoin),
			"max_voters":                intAttr(&c.Server.MaxVoters),
			"dead_server_cleanup_after": durationAttr(&c.Server.DeadServerCleanupAfter),
			"server_stabilization_time": durationAttr(&c.Server.ServerStabilizationTime),
			"min_quorum":                intAttr(&c.Server.MinQuorum),
			"reconcile_interval":        durationAttr(&c.Server.ReconcileInterval),
			"leave_on_terminate":        boolAttr(&c.Server.LeaveOnTerminate),
		},
		"raft": {
			"heartbeat_timeout":    durationAttr(&c.Raft.HeartbeatTimeout),
			"election_timeout":     durationAttr(&c.Raft.ElectionTimeout),
			"leader_lease_timeout": durationAttr(&c.Raft.LeaderLeaseTimeout),
			"commit_timeout":       durationAttr(&c.Raft.CommitTimeout),
			"snapshot_threshold":   uint64Attr(&c.Raft.SnapshotThreshold),
			"snapshot_interval":    durationAttr(&c.Raft.SnapshotInterval),
			"trailing_logs":        uint64Attr(&c.Raft.TrailingLogs),
		},
		"serf": {
			"encrypt": stringAttr(&c.Serf.Encrypt),
		},
		"addresses": {
			"http": stringAttr(&c.Addresses.HTTP),
		},
		"acl": {
			"enabled": boolAttr(&c.ACL.Enabled),
		},
		"tls": {
			"ca_file":                stringAttr(&c.TLS.CAFile),
			"cert_file":              stringAttr(&c.TLS.CertFile),
			"key_file":               stringAttr(&c.TLS.KeyFile),
			"verify_incoming":        boolAttr(&c.TLS.VerifyIncoming),
			"verify_server_hostname": boolAttr(&c.TLS.VerifyServerHostname),
			"http":                   boolAttr(&c.TLS.HTTP),
			"cluster":                stringAttr(&c.TLS.Cluster),
		},
		"limits": {
			"max_payload_bytes": intAttr(&c.Limits.MaxPayloadBytes),
			"max_result_bytes":  intAttr(&c.Limits.MaxResultBytes),
			"max_request_bytes": intAttr(&c.Limits.MaxRequestBytes),
			"lease_ttl":         durationAttr(&c.Limits.LeaseTTL),
		},
	}
	blocks := []hcl.BlockHeaderSchema{
		{Type: "tags"},
		{Type: "plugin", LabelNames: []string{"name"}},
		{Type: "queue", LabelNames: []string{"name"}},
		{Type: "periodic", LabelNames: []string{"name"}},
	}
	for _, name := range slices.Sorted(maps.Keys(single)) {
		blocks = append(blocks, hcl.BlockHeaderSchema{Type: name})
	}

	content, diags := decodeAttrs(body, "", top, blocks)
	seen := map[string]hcl.Range{}
	for _, b := range content.Blocks {
		id := strings.Join(append([]string{b.Type}, b.Labels...), " ")
		if prev, ok := seen[id]; ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("duplicate %s block", blockName(b)),
				Detail:   fmt.Sprintf("It was already defined at %s; merge the two blocks.", prev),
				Subject:  b.DefRange.Ptr(),
			})
			continue
		}
		seen[id] = b.DefRange
		switch b.Type {
		case "tags":
			diags = append(diags, decodeTags(b.Body, c)...)
		case "plugin":
			diags = append(diags, decodePlugin(b, c)...)
		case "queue":
			diags = append(diags, decodeQueue(b, c)...)
		case "periodic":
			diags = append(diags, decodePeriodic(b, c)...)
		default:
			_, d := decodeAttrs(b.Body, b.Type, single[b.Type], nil)
			diags = append(diags, d...)
		}
	}
	return diags
}

// decodeAttrs checks body against the attributes in attrs plus blocks and
// runs the setter of every attribute present. where names the enclosing
// block in messages ("" at top level).
func decodeAttrs(body hcl.Body, where string, attrs map[string]setter, blocks []hcl.BlockHeaderSchema) (*hcl.BodyContent, hcl.Diagnostics) {
	schema := &hcl.BodySchema{Blocks: blocks}
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: name})
	}
	content, diags := body.Content(schema)
	if where != "" {
		for _, d := range diags {
			d.Summary = fmt.Sprintf("%s in block %q", d.Summary, where)
		}
	}
	for _, a := range sortedAttrs(content.Attributes) {
		key := a.Name
		if where != "" {
			key = where + "." + a.Name
		}
		diags = append(diags, attrs[a.Name](a.Expr, key)...)
	}
	return content, diags
}

func decodeTags(body hcl.Body, c *Config) hcl.Diagnostics {
	attrs, diags := body.JustAttributes()
	for _, a := range sortedAttrs(attrs) {
		var v string
		diags = append(diags, decodeValue(a.Expr, "tags."+a.Name, &v)...)
		if c.Tags == nil {
			c.Tags = map[string]string{}
		}
		c.Tags[a.Name] = v
	}
	return diags
}

func decodePlugin(b *hcl.Block, c *Config) hcl.Diagnostics {
	name := b.Labels[0]
	p, ok := c.Plugins[name]
	if !ok {
		p = DefaultPlugin(name)
	}
	where := "plugin." + name
	content, diags := decodeAttrs(b.Body, where, map[string]setter{
		"concurrency": intAttr(&p.Concurrency),
		"checksum":    stringAttr(&p.Checksum),
		"enabled":     boolPtrAttr(&p.Enabled),
	}, []hcl.BlockHeaderSchema{{Type: "config"}})
	for i, cb := range content.Blocks {
		if i > 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("duplicate config block in block %q", where),
				Detail:   "A plugin takes one config block; merge them.",
				Subject:  cb.DefRange.Ptr(),
			})
			continue
		}
		js, d := bodyToJSON(cb.Body, where+".config")
		diags = append(diags, d...)
		p.Config = js
	}
	if c.Plugins == nil {
		c.Plugins = map[string]Plugin{}
	}
	c.Plugins[name] = p
	return diags
}

func decodeQueue(b *hcl.Block, c *Config) hcl.Diagnostics {
	name := b.Labels[0]
	q, ok := c.Queues[name]
	if !ok {
		q = DefaultQueue()
	}
	_, diags := decodeAttrs(b.Body, "queue."+name, map[string]setter{
		"max_attempts": intAttr(&q.MaxAttempts),
		"concurrency":  intAttr(&q.Concurrency),
		"retention":    durationAttr(&q.Retention),
		"rate":         stringAttr(&q.Rate),
		"burst":        intAttr(&q.Burst),
	}, nil)
	if c.Queues == nil {
		c.Queues = map[string]Queue{}
	}
	c.Queues[name] = q
	return diags
}

// bodyToJSON evaluates a plugin's free-form config block (attributes only,
// no variables or functions) and encodes it as a JSON object.
func bodyToJSON(body hcl.Body, where string) ([]byte, hcl.Diagnostics) {
	attrs, diags := body.JustAttributes()
	vals := make(map[string]cty.Value, len(attrs))
	for _, a := range sortedAttrs(attrs) {
		v, d := a.Expr.Value(nil)
		if d.HasErrors() {
			diags = append(diags, annotate(d, where+"."+a.Name)...)
			continue
		}
		vals[a.Name] = v
	}
	if diags.HasErrors() {
		return nil, diags
	}
	obj := cty.ObjectVal(vals)
	js, err := ctyjson.Marshal(obj, obj.Type())
	if err != nil {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("cannot encode %q as JSON", where),
			Detail:   err.Error(),
			Subject:  body.MissingItemRange().Ptr(),
		})
		return nil, diags
	}
	return js, diags
}

func decodeValue(expr hcl.Expression, key string, target any) hcl.Diagnostics {
	diags := gohcl.DecodeExpression(expr, nil, target)
	return annotate(diags, key)
}

// annotate names the key in diagnostics that come from a value.
func annotate(diags hcl.Diagnostics, key string) hcl.Diagnostics {
	for _, d := range diags {
		d.Summary = fmt.Sprintf("%s for %q", d.Summary, key)
	}
	return diags
}

func stringAttr(p *string) setter {
	return func(expr hcl.Expression, key string) hcl.Diagnostics {
		return decodeValue(expr, key, p)
	}
}

func intAttr(p *int) setter {
	return func(expr hcl.Expression, key string) hcl.Diagnostics {
		return decodeValue(expr, key, p)
	}
}

func uint64Attr(p *uint64) setter {
	return func(expr hcl.Expression, key string) hcl.Diagnostics {
		return decodeValue(expr, key, p)
	}
}

func boolAttr(p *bool) setter {
	return func(expr hcl.Expression, key string) hcl.Diagnostics {
		return decodeValue(expr, key, p)
	}
}

func boolPtrAttr(p **bool) setter {
	return func(expr hcl.Expression, key string) hcl.Diagnostics {
		var v bool
		diags := decodeValue(expr, key, &v)
		if !diags.HasErrors() {
			*p = &v
		}
		return diags
	}
}

func stringListAttr(p *[]string) setter {
	return func(expr hcl.Expression, key string) hcl.Diagnostics {
		var v []string
		diags := decodeValue(expr, key, &v)
		if !diags.HasErrors() {
			*p = v
		}
		return diags
	}
}

// durationAttr reads a Go duration string such as "30s" or "1m30s".
func durationAttr(p *time.Duration) setter {
	return func(expr hcl.Expression, key string) hcl.Diagnostics {
		var s string
		if diags := decodeValue(expr, key, &s); diags.HasErrors() {
			return diags
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("invalid duration for %q", key),
				Detail:   fmt.Sprintf("%q is not a duration; use a string such as \"30s\", \"5m\" or \"1h30m\".", s),
				Subject:  expr.Range().Ptr(),
			}}
		}
		*p = d
		return nil
	}
}

func blockName(b *hcl.Block) string {
	if len(b.Labels) == 0 {
		return fmt.Sprintf("%q", b.Type)
	}
	return fmt.Sprintf("%s %q", b.Type, strings.Join(b.Labels, " "))
}

// sortedAttrs orders attributes by source position so the first error
// reported is the first one in the file.
func sortedAttrs(attrs hcl.Attributes) []*hcl.Attribute {
	out := make([]*hcl.Attribute, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].NameRange.Start.Byte < out[j].NameRange.Start.Byte
	})
	return out
}
