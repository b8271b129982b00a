package maincf

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// typed parses "name = value" plus extra lines and returns the Config.
func typed(t *testing.T, name, value, extra string) *Config {
	t.Helper()
	c, err := Parse(strings.NewReader(name+" = "+value+"\n"+extra), "main.cf")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func checkValueError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want || !errors.Is(err, ErrSyntax) {
		t.Errorf("error = %v; want %q wrapping ErrSyntax", err, want)
	}
}

func TestInt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value, extra string
		want         int64
		err          string
	}{
		{value: "100", want: 100},
		{value: "0", want: 0},
		{value: "-1", want: -1},
		{value: "+7", want: 7},
		{value: "007", want: 7},
		{value: "9223372036854775807", want: 9223372036854775807},
		{value: "$lim", extra: "lim = 51200000\n", want: 51200000},
		{value: "${big?{1000}:{10}}", extra: "big = yes\n", want: 1000},
		{value: "", err: "main.cf:1: bad numerical configuration: p = "},
		{value: "abc", err: "main.cf:1: bad numerical configuration: p = abc"},
		{value: "10k", err: "main.cf:1: bad numerical configuration: p = 10k"},
		{value: "1 2", err: "main.cf:1: bad numerical configuration: p = 1 2"},
		{value: "1.5", err: "main.cf:1: bad numerical configuration: p = 1.5"},
		{value: "0x10", err: "main.cf:1: bad numerical configuration: p = 0x10"},
		{value: "9223372036854775808", err: "main.cf:1: bad numerical configuration: p = 9223372036854775808"},
		{value: "$", err: `main.cf:1: p = $: empty macro name: "$"`},
	}
	for _, tc := range tests {
		c := typed(t, "p", tc.value, tc.extra)
		got, err := c.Int("p")
		if tc.err != "" {
			checkValueError(t, err, tc.err)
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Int(%q) = %d, %v; want %d", tc.value, got, err, tc.want)
		}
	}
	c := typed(t, "x", "1", "")
	for name, want := range map[string]int64{
		"virtual_minimum_uid":                 100,
		"virtual_mailbox_limit":               51200000,
		"message_size_limit":                  10240000,
		"deliver_lock_attempts":               20,
		"virtual_alias_recursion_limit":       1000,
		"virtual_destination_recipient_limit": 50,
	} {
		if got, err := c.Int(name); err != nil || got != want {
			t.Errorf("Int(%q) default = %d, %v; want %d", name, got, err, want)
		}
	}
	checkValueError(t, func() error { _, err := c.Int("undefined_thing"); return err }(), "bad numerical configuration: undefined_thing = ")
}

func TestBool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value string
		want  bool
		err   bool
	}{
		{value: "yes", want: true},
		{value: "YES", want: true},
		{value: "Yes", want: true},
		{value: "no", want: false},
		{value: "NO", want: false},
		{value: "nO", want: false},
		// Postfix's get_mail_conf_bool knows only yes and no.
		{value: "true", err: true},
		{value: "false", err: true},
		{value: "1", err: true},
		{value: "0", err: true},
		{value: "", err: true},
		{value: "y", err: true},
		{value: "yes no", err: true},
		{value: "yess", err: true},
	}
	for _, tc := range tests {
		c := typed(t, "p", tc.value, "")
		got, err := c.Bool("p")
		if tc.err {
			checkValueError(t, err, "main.cf:1: bad boolean configuration: p = "+tc.value)
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Bool(%q) = %v, %v; want %v", tc.value, got, err, tc.want)
		}
	}
	c := typed(t, "flag", "$other", "other = No\n")
	if got, err := c.Bool("flag"); err != nil || got {
		t.Errorf("Bool(expanded No) = %v, %v", got, err)
	}
	for name, want := range map[string]bool{
		"strict_mailbox_ownership":  true,
		"enable_original_recipient": true,
		"owner_request_special":     true,
		"soft_bounce":               false,
		"smtputf8_enable":           false, // compatibility_level 0
	} {
		if got, err := c.Bool(name); err != nil || got != want {
			t.Errorf("Bool(%q) default = %v, %v; want %v", name, got, err, want)
		}
	}
	c = typed(t, "compatibility_level", "3.6", "")
	if got, err := c.Bool("smtputf8_enable"); err != nil || !got {
		t.Errorf("Bool(smtputf8_enable) at level 3.6 = %v, %v; want true", got, err)
	}
}

func TestDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value string
		want        time.Duration
		err         bool
	}{
		{name: "p", value: "1s", want: time.Second},
		{name: "p", value: "0", want: 0},
		{name: "p", value: "0s", want: 0},
		{name: "p", value: "500", want: 500 * time.Second},
		{name: "p", value: "2m", want: 2 * time.Minute},
		{name: "p", value: "3h", want: 3 * time.Hour},
		{name: "p", value: "5d", want: 5 * 24 * time.Hour},
		{name: "p", value: "1w", want: 7 * 24 * time.Hour},
		{name: "p", value: "010s", want: 10 * time.Second},
		{name: "p", value: "2147483647", want: 2147483647 * time.Second},
		{name: "p", value: "3550w", want: 3550 * 7 * 24 * time.Hour},
		{name: "maximal_queue_lifetime", value: "5", want: 5 * 24 * time.Hour},
		{name: "bounce_queue_lifetime", value: "2", want: 2 * 24 * time.Hour},
		{name: "delay_warning_time", value: "4", want: 4 * time.Hour},
		{name: "maximal_queue_lifetime", value: "5h", want: 5 * time.Hour},
		{name: "p", value: "", err: true},
		{name: "p", value: "s", err: true},
		{name: "p", value: "-1s", err: true},
		{name: "p", value: "+1s", err: true},
		{name: "p", value: "1S", err: true},
		{name: "p", value: "1x", err: true},
		{name: "p", value: "1ms", err: true},
		{name: "p", value: "1 s", err: true},
		{name: "p", value: "1.5h", err: true},
		{name: "p", value: "2147483648", err: true},
		{name: "p", value: "3551w", err: true},
		{name: "p", value: "99999999999999999999s", err: true},
	}
	for _, tc := range tests {
		c := typed(t, tc.name, tc.value, "")
		got, err := c.Duration(tc.name)
		if tc.err {
			checkValueError(t, err, "main.cf:1: bad time configuration: "+tc.name+" = "+tc.value)
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Duration(%s = %q) = %v, %v; want %v", tc.name, tc.value, got, err, tc.want)
		}
	}
	c := typed(t, "x", "1", "")
	for name, want := range map[string]time.Duration{
		"deliver_lock_delay":     time.Second,
		"stale_lock_time":        500 * time.Second,
		"command_time_limit":     1000 * time.Second,
		"maximal_queue_lifetime": 5 * 24 * time.Hour,
	} {
		if got, err := c.Duration(name); err != nil || got != want {
			t.Errorf("Duration(%q) default = %v, %v; want %v", name, got, err, want)
		}
	}
}

func TestTypedOverride(t *testing.T) {
	t.Parallel()
	c := typed(t, "virtual_minimum_uid", "500", "")
	if err := c.Override("virtual_minimum_uid=1000"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Int("virtual_minimum_uid"); err != nil || got != 1000 {
		t.Errorf("Int after Override = %d, %v", got, err)
	}
	if err := c.Override("soft_bounce=maybe"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Bool("soft_bounce")
	checkValueError(t, err, "-o:2: bad boolean configuration: soft_bounce = maybe")
}
