// Command dashboard-check decodes Grafana dashboard JSON files strictly into
// the dashboard type of Grafana's own foundation SDK, with every panel and
// query plugin the SDK knows registered. A file fails when it has a field the
// schema does not define, a value of the wrong type, a required field missing,
// a panel type no registered plugin provides, or a query whose datasource type
// has no query schema (it would be decoded as an unchecked bag of fields).
//
// Usage: dashboard-check FILE...   (one line per problem, "FILE: path: message")
//
//	dashboard-check --version
//
// Exit status: 0 all files valid, 1 problems found, 2 usage or I/O error.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// sdkVersion is set at link time to the pinned SDK version (pyproject.toml).
var sdkVersion = "unknown"

func main() {
	args := os.Args[1:]
	if len(args) == 1 && args[0] == "--version" {
		fmt.Printf("dashboard-check grafana-foundation-sdk/go %s\n", sdkVersion)
		return
	}
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprintln(os.Stderr, "usage: dashboard-check FILE... | --version")
		os.Exit(2)
	}
	plugins.RegisterDefaultPlugins()
	bad := false
	for _, file := range args {
		raw, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			os.Exit(2)
		}
		for _, problem := range check(raw) {
			bad = true
			fmt.Printf("%s: %s\n", file, problem)
		}
	}
	if bad {
		os.Exit(1)
	}
}

func check(raw []byte) []string {
	var out []string
	var d dashboard.Dashboard
	// The SDK returns its error list typed even when it is empty: only its entries count.
	if err := d.UnmarshalJSONStrict(raw); err != nil {
		var errs cog.BuildErrors
		if errors.As(err, &errs) {
			for _, e := range errs {
				out = append(out, e.Error())
			}
		} else {
			out = append(out, err.Error())
		}
	}
	// The same typed-empty error makes the SDK drop every panel it decoded
	// without error, so panel types and queries are checked on the raw JSON.
	var doc struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return append(out, err.Error())
	}
	for i, p := range doc.Panels {
		out = append(out, checkPanel("panels["+strconv.Itoa(i)+"]", p)...)
	}
	return out
}

type rawPanel struct {
	Type       string `json:"type"`
	Datasource *struct {
		Type string `json:"type"`
	} `json:"datasource"`
	Targets []json.RawMessage `json:"targets"`
	Panels  []json.RawMessage `json:"panels"`
}

// checkPanel reports what strict decoding lets through: an unknown panel type
// leaves options/fieldConfig undecoded, an unknown query type leaves the query
// as a map of anything. Shape errors were reported by the strict decode.
func checkPanel(where string, raw json.RawMessage) []string {
	var p rawPanel
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil
	}
	var out []string
	if p.Type == "row" {
		for j, sub := range p.Panels {
			out = append(out, checkPanel(where+".panels["+strconv.Itoa(j)+"]", sub)...)
		}
		return out
	}
	if _, ok := cog.NewRuntime().ConfigForPanelcfgVariant(p.Type); p.Type != "" && !ok {
		out = append(out, fmt.Sprintf("%s.type: no panel plugin %q in the Grafana SDK (options would go unchecked)", where, p.Type))
	}
	hint := ""
	if p.Datasource != nil {
		hint = p.Datasource.Type
	}
	for k, target := range p.Targets {
		q, err := cog.StrictUnmarshalDataquery(target, hint)
		if err != nil {
			continue
		}
		if _, unknown := q.(variants.UnknownDataquery); unknown {
			out = append(out, fmt.Sprintf("%s.targets[%d]: query of unknown datasource type (set datasource.type, e.g. \"prometheus\")", where, k))
		}
	}
	return out
}
