package daemon

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"unicode"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/config"
	"github.com/corral-dev/corral/daemon/httpapi"
	"github.com/hashicorp/go-hclog"
)

// WithConfigLoader sets how a reload (SIGHUP, `corral reload`) gets the
// new configuration: the agent command re-reads its -config files and
// re-applies its flags. Without it a reload keeps the config and only
// rescans plugin_dir.
func WithConfigLoader(load func() (*config.Config, error)) Option {
	return func(a *Agent) { a.loadConfig = load }
}

// reloadable are the config fields a reload applies; a change to any
// other field is named in a log line as needing a restart.
var reloadable = map[string]bool{"LogLevel": true, "PluginDir": true, "Plugins": true}

// Reload re-reads the configuration and applies what can change at run
// time: the log level, plugin_dir (new plugins start; changed ones are
// replaced and removed ones stopped once their running jobs finish) and
// plugin settings. Running jobs are not interrupted. Changed options that
// need a restart are logged and returned.
func (a *Agent) Reload(ctx context.Context) (api.ReloadResult, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	next := a.cfg.Clone()
	if a.loadConfig != nil {
		var err error
		if next, err = a.loadConfig(); err != nil {
			a.logger.Error("reload: config not applied", "error", err)
			return api.ReloadResult{}, fmt.Errorf("read config: %w", err)
		}
	}
	res := api.ReloadResult{Node: a.cfg.NodeName, NeedRestart: needRestart(a.cfg, next),
		Started: []string{}, Restarted: []string{}, Removed: []string{}}
	if next.LogLevel != "" && next.LogLevel != a.cfg.LogLevel {
		a.logger.SetLevel(hclog.LevelFromString(next.LogLevel))
		a.logger.Info("reload: log level changed", "from", a.cfg.LogLevel, "to", next.LogLevel)
		a.cfg.LogLevel = next.LogLevel
	}
	res.LogLevel = a.cfg.LogLevel
	if a.plugins != nil {
		rep, err := a.plugins.Reload(a.pluginConfig(next))
		if err != nil {
			return res, fmt.Errorf("reload plugins: %w", err)
		}
		a.cfg.PluginDir, a.cfg.Plugins = next.PluginDir, next.Plugins
		res.Started, res.Restarted, res.Removed = nonNil(rep.Started), nonNil(rep.Restarted), nonNil(rep.Removed)
	}
	if len(res.NeedRestart) > 0 {
		a.logger.Warn("reload: these changed options take effect only after an agent restart", "options", strings.Join(res.NeedRestart, ", "))
	}
	a.logger.Info("reloaded", "log_level", res.LogLevel, "plugins_started", res.Started,
		"plugins_restarting_when_idle", res.Restarted, "plugins_removed_when_idle", res.Removed)
	a.refreshPluginTag()
	return res, nil
}

// refreshPluginTag gossips this node's plugin list after a change.
func (a *Agent) refreshPluginTag() {
	if a.serf == nil {
		return
	}
	if err := a.serf.SetPlugins(a.localPluginNames()); err != nil {
		a.logger.Warn("cannot update the plugins tag", "error", err)
	}
}

// needRestart names (HCL style) the top-level options that differ between
// cur and next and that a reload does not apply. Empty node_name and
// data_dir in next mean "as before" (-dev, or the host name).
func needRestart(cur, next *config.Config) []string {
	var out []string
	cv, nv := reflect.ValueOf(cur).Elem(), reflect.ValueOf(next).Elem()
	for i := 0; i < cv.NumField(); i++ {
		f := cv.Type().Field(i)
		if reloadable[f.Name] || !f.IsExported() {
			continue
		}
		if (f.Name == "NodeName" || f.Name == "DataDir") && nv.Field(i).String() == "" {
			continue
		}
		if !reflect.DeepEqual(cv.Field(i).Interface(), nv.Field(i).Interface()) {
			out = append(out, snakeCase(f.Name))
		}
	}
	return out
}

func snakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// reloader adapts the agent to httpapi.Reloader.
type reloader struct{ a *Agent }

var _ httpapi.Reloader = reloader{}

// Reload implements httpapi.Reloader.
func (r reloader) Reload(ctx context.Context) (any, error) { return r.a.Reload(ctx) }
