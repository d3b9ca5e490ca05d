package command

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// table writes rows under a header as aligned columns.
func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}

// field is one "Key = value" line of a detail view.
type field struct{ key, value string }

// fields writes key = value lines with the "=" aligned (Nomad style),
// skipping empty values.
func fields(w io.Writer, fs []field) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, f := range fs {
		if f.value == "" {
			continue
		}
		fmt.Fprintf(tw, "%s\t= %s\n", f.key, f.value)
	}
	_ = tw.Flush()
}

// when formats a time as RFC 3339 with its distance from now; the zero
// time is "".
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t)
	rel := "from now"
	if d >= 0 {
		rel = "ago"
	} else {
		d = -d
	}
	return fmt.Sprintf("%s (%s %s)", t.Local().Format(time.RFC3339), short(d), rel)
}

// short rounds a duration for display.
func short(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < 24*time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// age is the compact time since t for tables.
func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return short(time.Since(t).Round(time.Second))
}

// dash shows "-" for an empty table cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// pairs formats a map as sorted k=v joined by sep.
func pairs(m map[string]string, sep string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + m[k]
	}
	return strings.Join(out, sep)
}
