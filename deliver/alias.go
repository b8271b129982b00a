package deliver

// Virtual alias expansion, for callers that did not expand aliases themselves: the
// rules are in the package doc (doc.go, "Alias expansion").

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"vdeliver/lookup"
)

// Expansion is what virtual_alias_maps made of one recipient.
type Expansion struct {
	Recipient string      `json:"recipient"`
	Addresses []string    `json:"addresses"` // final addresses, duplicates removed
	Steps     []AliasStep `json:"steps,omitempty"`
	Probes    []Probe     `json:"-"`
}

// AliasStep is one alias lookup that matched.
type AliasStep struct {
	Address string   `json:"address"`
	Key     string   `json:"key"`     // the key that matched
	Results []string `json:"results"` // what it expanded to, after @domain, myorigin and extension rules
}

// Expanded reports whether any alias matched.
func (x *Expansion) Expanded() bool { return len(x.Steps) > 0 }

func (s *Settings) openAliasMaps() (*lookup.Maps, error) {
	if s.aliasMaps == nil && s.aliasErr == nil {
		// Not paranoid: an alias result is an address, never a path, and Postfix allows
		// $n in it.
		s.aliasMaps, s.aliasErr = lookup.OpenMaps(s.AliasMapsSpec, lookup.Options{Warn: s.Warn, ConfigDir: s.ConfigDir, NonBDB: s.NonBDB, Proxymap: s.proxymap})
	}
	return s.aliasMaps, s.aliasErr
}

// ExpandAliases expands rcpt through virtual_alias_maps with cleanup(8)'s rules (the
// package doc, "Alias expansion"). It writes nothing. A recipient no alias matches
// expands to itself.
//
// It returns a 5.1.3 bounce for a recipient with control characters, 4.3.5 for a table
// that cannot be opened or queried or a result without an address, and 4.6.0 when a
// virtual_alias_* limit is exceeded; the Expansion is returned in every case, with the
// lookups made so far.
func (s *Settings) ExpandAliases(ctx context.Context, rcpt string) (*Expansion, *Status) {
	x := &Expansion{Recipient: rcpt}
	if rcpt == "" || hasControl(rcpt) {
		return x, Bouncef(CodeBadRcptSyntax, fmt.Errorf("recipient %q", rcpt), "bad recipient address syntax")
	}
	maps, err := s.openAliasMaps()
	if err != nil {
		return x, Deferf(CodeConfig, fmt.Errorf("virtual_alias_maps: %w", err), "mail system configuration error")
	}
	if s.AliasRecursionLimit < 1 || s.AliasExpansionLimit < 1 || s.AliasLengthLimit < 1 {
		return x, Deferf(CodeConfig, errors.New("virtual_alias_recursion_limit, virtual_alias_expansion_limit and virtual_alias_address_length_limit must be at least 1"),
			"mail system configuration error")
	}
	argv := []string{rcpt}
	done := map[string]bool{} // cleanup's been_here: addresses that expanded into themselves
	for arg := 0; arg < len(argv); arg++ {
		if len(argv) > s.AliasExpansionLimit {
			return x, Deferf(CodeAliasExpansion, fmt.Errorf("virtual_alias_maps: unreasonable expansion size for %s: more than %d addresses", rcpt, s.AliasExpansionLimit),
				"alias expansion error: more than virtual_alias_expansion_limit (%d) addresses", s.AliasExpansionLimit)
		}
		for count := 0; ; count++ {
			if done[fold(argv[arg])] {
				break
			}
			if count >= s.AliasRecursionLimit {
				return x, Deferf(CodeAliasExpansion, fmt.Errorf("virtual_alias_maps: unreasonable nesting for %s: %d lookups along one address, last %s", rcpt, count, argv[arg]),
					"alias expansion error: alias loop, or nesting deeper than virtual_alias_recursion_limit (%d)", s.AliasRecursionLimit)
			}
			lhs := argv[arg]
			results, key, found, err := s.aliasLookup(ctx, maps, lhs, x)
			if err != nil {
				return x, Deferf(CodeConfig, fmt.Errorf("virtual_alias_maps: lookup %s: %w", lhs, err), "mail system configuration error")
			}
			if !found {
				break
			}
			x.Steps = append(x.Steps, AliasStep{Address: lhs, Key: key, Results: results})
			for i, res := range results {
				if n := len(Quote822Local(res)); n > s.AliasLengthLimit {
					return x, Deferf(CodeAliasExpansion, fmt.Errorf("virtual_alias_maps: unreasonable result for %s: %d bytes: %.300s", lhs, n, res),
						"alias expansion error: an address longer than virtual_alias_address_length_limit (%d)", s.AliasLengthLimit)
				}
				if i == 0 {
					argv[arg] = res
				} else {
					argv = append(argv, res)
				}
				// "user@x  user@x, copy@y": the address is delivered, not expanded again.
				if strings.EqualFold(lhs, res) {
					done[fold(lhs)] = true
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, a := range argv {
		if !seen[fold(a)] {
			seen[fold(a)] = true
			x.Addresses = append(x.Addresses, a)
		}
	}
	return x, nil
}

// aliasLookup is mail_addr_map(): the first key of searchKeys that any table answers,
// its result split, canonicalised and given the unmatched extension.
func (s *Settings) aliasLookup(ctx context.Context, maps *lookup.Maps, addr string, x *Expansion) (results []string, key string, found bool, err error) {
	keys, err := s.searchKeys(ctx, fold(addr))
	if err != nil {
		return nil, "", false, fmt.Errorf("mydestination: %w", err)
	}
	local, domain, _ := splitAt(addr)
	ext, split := splitExtension(local, s.Delimiters, s.DoubleBounce, s.OwnerRequest)
	stripped := map[string]bool{}
	if split {
		stripped[Quote822Local(fold(ext.User)+"@"+fold(domain))] = true
		stripped[Quote822Local(fold(ext.User))] = true
	}
	for _, k := range keys {
		for _, t := range maps.Tables() {
			if k.fixedOnly && !t.Fixed() {
				continue
			}
			q := k.key
			if !t.Fixed() {
				// Pattern tables see the full address as given (cleanup folds only
				// fixed-key queries); regexp and pcre tables ignore case by default.
				q = Quote822Local(addr)
			}
			if err := ctx.Err(); err != nil {
				return nil, "", false, err
			}
			v, ok, err := t.Lookup(ctx, q)
			x.Probes = append(x.Probes, Probe{Map: "virtual_alias_maps", Key: q, Found: ok, Value: v, Err: err})
			if err != nil {
				return nil, "", false, fmt.Errorf("table %s: %w", t.Name(), err)
			}
			if !ok {
				continue
			}
			if v == "" {
				return nil, "", false, fmt.Errorf("table %s: key %q: %w", t.Name(), q, lookup.ErrEmptyValue)
			}
			extension := ""
			if split && stripped[k.key] {
				extension = ext.Delim + ext.Ext
			}
			results, err := s.aliasResults(local, v, extension)
			if err != nil {
				return nil, "", false, fmt.Errorf("table %s: key %q: %w", t.Name(), q, err)
			}
			return results, q, true, nil
		}
	}
	return nil, "", false, nil
}

// aliasResults turns one table value into addresses (internal form): "@domain" gets the
// localpart, bare localparts get @myorigin, the extension is propagated.
func (s *Settings) aliasResults(local, value, extension string) ([]string, error) {
	if strings.HasPrefix(value, "@") {
		// mail_addr_map: prepend the original user, without the unmatched extension.
		user := strings.TrimSuffix(local, extension)
		value = strings.TrimSuffix(Quote822Local(user+"@"), "@") + value
	}
	var out []string
	for _, w := range splitAddressList(value) {
		a := unquote822Local(w)
		if hasControl(a) {
			return nil, fmt.Errorf("result %q: control character", value)
		}
		l, d, hasAt := splitAt(a)
		if !hasAt {
			d = s.MyOrigin
		}
		if extension != "" && s.PropagateExtension {
			l += extension
		}
		if l == "" && d == "" {
			continue
		}
		out = append(out, l+"@"+d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("non-address result %q", value)
	}
	return out, nil
}

// splitAddressList splits an alias result at commas and whitespace outside double quotes
// and angle brackets, drops (comments) and unwraps <addr>.
func splitAddressList(s string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		w := cur.String()
		cur.Reset()
		if i := strings.IndexByte(w, '<'); i >= 0 {
			if j := strings.LastIndexByte(w, '>'); j > i {
				w = w[i+1 : j]
			}
		}
		if w != "" {
			out = append(out, w)
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				j++
			}
			cur.WriteString(s[i:min(j+1, len(s))])
			i = j
		case c == '<':
			j := strings.IndexByte(s[i:], '>')
			if j < 0 {
				j = len(s) - i - 1
			}
			cur.WriteString(s[i : i+j+1])
			i += j
		case c == '(':
			depth := 0
			for ; i < len(s); i++ {
				if s[i] == '(' {
					depth++
				} else if s[i] == ')' {
					if depth--; depth == 0 {
						break
					}
				}
			}
		case c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n':
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}

// unquote822Local is unquote_822_local(): the localpart's quotes go, backslash escapes
// are resolved; the domain is kept as is.
func unquote822Local(addr string) string {
	local, domain, hasAt := splitAt(addr)
	if strings.ContainsAny(local, `"\`) {
		var b strings.Builder
		for i := 0; i < len(local); i++ {
			switch c := local[i]; {
			case c == '"':
			case c == '\\' && i+1 < len(local):
				i++
				b.WriteByte(local[i])
			default:
				b.WriteByte(c)
			}
		}
		local = b.String()
	}
	if !hasAt {
		return local
	}
	return local + "@" + domain
}

// propagatesVirtual reports whether propagate_unmatched_extensions names "virtual".
func propagatesVirtual(list string) bool {
	for _, w := range lookup.SplitList(list) {
		if strings.EqualFold(w, "virtual") {
			return true
		}
	}
	return false
}

// queueLabel is the queue id for a log line, NOQUEUE when there is none (Postfix's word).
func queueLabel(id string) string {
	if id == "" {
		return "NOQUEUE"
	}
	return id
}

// AliasView is the virtual_alias_maps expansion as `vdeliver explain` shows it: what
// --expand-aliases (or Postfix's cleanup(8), before vdeliver runs) makes of a recipient.
type AliasView struct {
	Steps   []AliasStep   `json:"steps,omitempty"`
	Targets []AliasTarget `json:"targets,omitempty"`
	Status  string        `json:"status,omitempty"` // set when the expansion fails
	Detail  string        `json:"detail,omitempty"`
}

// AliasTarget is one final address of an expansion and what a run would do with it.
type AliasTarget struct {
	Address string `json:"address"`
	Action  string `json:"action"` // "deliver" (a virtual mailbox domain, or the recipient itself) or "forward"
}

// ExplainAliases expands rcpt for explain. It returns nil when virtual_alias_maps is
// empty or no alias matches, so an explanation without aliases looks as before.
func (s *Settings) ExplainAliases(ctx context.Context, rcpt string) *AliasView {
	if strings.TrimSpace(s.AliasMapsSpec) == "" {
		return nil
	}
	x, st := s.ExpandAliases(ctx, rcpt)
	if st != nil {
		v := &AliasView{Steps: x.Steps, Status: st.Line()}
		if st.Err != nil {
			v.Detail = st.Err.Error()
		}
		return v
	}
	if !x.Expanded() {
		return nil
	}
	v := &AliasView{Steps: x.Steps}
	for _, a := range x.Addresses {
		action := "deliver"
		if fold(a) != fold(rcpt) {
			_, domain, _ := splitAt(fold(a))
			if listed, err := s.Domains.Match(ctx, domain); err != nil {
				action = "error: " + err.Error()
			} else if !listed {
				action = "forward"
			}
		}
		v.Targets = append(v.Targets, AliasTarget{Address: a, Action: action})
	}
	return v
}

// writeText prints the expansion, one alias lookup a line; nothing for nil.
func (v *AliasView) writeText(w io.Writer) {
	if v == nil {
		return
	}
	for _, st := range v.Steps {
		fmt.Fprintf(w, "alias:        %s -> %s (key %q)\n", st.Address, strings.Join(st.Results, ", "), st.Key)
	}
	if v.Status != "" {
		fmt.Fprintf(w, "aliases:      %s\n", v.Status)
		if v.Detail != "" {
			fmt.Fprintf(w, "              %s\n", v.Detail)
		}
		return
	}
	var parts []string
	for _, t := range v.Targets {
		parts = append(parts, t.Address+" ("+t.Action+")")
	}
	fmt.Fprintf(w, "expands to:   %s (with --expand-aliases; Postfix's cleanup(8) expands before vdeliver runs)\n", strings.Join(parts, ", "))
}
