package confcheck

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"maps"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"
)

// postfixParameters are the names "postconf -d" lists (Postfix 3.7, with its built-in
// services), one a line; regenerate with
//
//	postconf -d | cut -d' ' -f1 | sort -u > confcheck/postfix_parameters.txt
//
//go:embed postfix_parameters.txt
var postfixParameters string

// knownParameters is postfixParameters as a set, built on first use: every delivery
// process links this package and must not pay for it at start-up.
var knownParameters = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, n := range strings.Fields(postfixParameters) {
		m[n] = true
	}
	return m
})

// vdeliverParameters are the parameters vdeliver itself reads from main.cf that the
// embedded list lacks: its own, and Postfix 3.11's non-Berkeley-DB migration, which the
// table readers follow (lookup/nonbdb.go).
var vdeliverParameters = []string{"vdeliver_trusted_uids", "non_bdb_migration_level", "non_bdb_custom_mapping",
	"vdeliver_maildir_size_in_names", "vdeliver_extension_folders", "vdeliver_folder_autocreate",
	"vdeliver_quota_maps", "vdeliver_overquota_status"}

// serviceSuffixes are the per-service parameters Postfix defines for every master.cf
// service (postconf's service-defined parameters): <service>_destination_recipient_limit
// and the rest of the scheduler's and pipe(8)'s settings.
var serviceSuffixes = []string{
	"delivery_slot_cost", "delivery_slot_discount", "delivery_slot_loan", "delivery_status_filter",
	"destination_concurrency_failed_cohort_limit", "destination_concurrency_limit",
	"destination_concurrency_negative_feedback", "destination_concurrency_positive_feedback",
	"destination_rate_delay", "destination_recipient_limit", "extra_recipient_limit",
	"initial_destination_concurrency", "minimum_delivery_slots", "recipient_limit",
	"recipient_refill_delay", "recipient_refill_limit", "time_limit", "transport_rate_delay",
}

// paramRef finds $name and ${name...} references in parameter values.
var paramRef = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\$\{?([A-Za-z0-9_]+)`) })

// unknownParameters: a main.cf parameter that Postfix does not know, that no master.cf
// service defines and that no other parameter refers to does nothing: "postconf -n"
// warns "unused parameter". It is nearly always a typo, and the parameter it was meant to
// be keeps its default (virtual_mailbox_domain for virtual_mailbox_domains).
func (c *checker) unknownParameters() {
	known := knownParameters()
	services := map[string]bool{"vdeliver": true}
	for _, s := range c.services {
		services[s.Name] = true
	}
	used := map[string]bool{}
	for _, p := range vdeliverParameters {
		used[p] = true
	}
	names := c.cf.Names()
	for _, n := range names {
		raw, _ := c.cf.Raw(n)
		for _, m := range paramRef().FindAllStringSubmatch(raw, -1) {
			used[m[1]] = true
		}
	}
	for _, s := range c.services {
		for _, w := range s.Args {
			for _, m := range paramRef().FindAllStringSubmatch(w.Text, -1) {
				used[m[1]] = true
			}
		}
	}
	// smtpd_restriction_classes names parameters of the administrator's own.
	for _, class := range strings.FieldsFunc(c.rawValue("smtpd_restriction_classes"), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		used[class] = true
	}
	var unknown []string
	for _, n := range names {
		if !known[n] && !used[n] && !serviceParameter(n, services) {
			unknown = append(unknown, n)
		}
	}
	unknown = c.postconfUnknown(unknown)
	// A typo of one of vdeliver's own parameters is suggested too.
	suggest := known
	if len(unknown) > 0 {
		suggest = maps.Clone(known)
		for _, p := range vdeliverParameters {
			suggest[p] = true
		}
	}
	for _, n := range unknown {
		file, line := c.cf.Line(n)
		if file == "" || file == "-o" {
			file, line = c.mainFile, 0
		}
		fix := "remove the line"
		if near := nearestParameter(n, suggest); near != "" {
			fix = fmt.Sprintf("did you mean %s? Rename it, or remove the line", near)
		}
		c.add(file, line, Warning, "unknown-parameter",
			fmt.Sprintf("unused parameter %s: Postfix and vdeliver do not know it, so it has no effect", n), fix)
	}
}

func (c *checker) rawValue(name string) string {
	v, _ := c.cf.Raw(name)
	return v
}

// serviceParameter reports whether name is <service>_<suffix> for a known service.
func serviceParameter(name string, services map[string]bool) bool {
	for _, suf := range serviceSuffixes {
		if svc, ok := strings.CutSuffix(name, "_"+suf); ok && services[svc] {
			return true
		}
	}
	return false
}

// nearestParameter is the known parameter closest to name by edit distance, when it is
// close enough (at most 2 edits) to be the one meant; "" otherwise.
func nearestParameter(name string, known map[string]bool) string {
	best, bestD := "", 3
	for k := range known {
		if d := len(k) - len(name); d > 2 || d < -2 {
			continue
		}
		// Exact below the limit: a tie with the best so far is a real tie.
		if d := editDistance(name, k, bestD+1); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	if bestD > 2 {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, or limit when it is at least limit.
func editDistance(a, b string, limit int) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

// postconfUnknown narrows names to those the installed Postfix does not know either: a
// Postfix newer than the embedded list knows more parameters. postconf(1) warns
// "NAME: unknown parameter" for each it does not know. Without postconf the embedded list
// decides.
func (c *checker) postconfUnknown(names []string) []string {
	if len(names) == 0 {
		return names
	}
	prog, err := exec.LookPath("postconf")
	if err != nil {
		return names
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, append([]string{"-c", c.cf.Dir(), "-d", "-h"}, names...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if cmd.Run() != nil {
		return names
	}
	var out []string
	for _, n := range names {
		if strings.Contains(stderr.String(), " "+n+": unknown parameter") {
			out = append(out, n)
		}
	}
	return out
}
