package main

import (
	"bytes"
	"testing"
	"time"
)

func TestMedianPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	for _, tc := range []struct {
		sorted      []time.Duration
		median, p95 time.Duration
	}{
		{nil, 0, 0},
		{ms(7), 7 * time.Millisecond, 7 * time.Millisecond},
		{ms(1, 2), 1500 * time.Microsecond, 2 * time.Millisecond},
		{ms(1, 2, 3), 2 * time.Millisecond, 3 * time.Millisecond},
		// 20 values: the 95th percentile by nearest rank is the 19th.
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 10500 * time.Microsecond, 19 * time.Millisecond},
	} {
		if got := median(tc.sorted); got != tc.median {
			t.Errorf("median(%v) = %v, want %v", tc.sorted, got, tc.median)
		}
		if got := percentile(tc.sorted, 95); got != tc.p95 {
			t.Errorf("percentile(%v, 95) = %v, want %v", tc.sorted, got, tc.p95)
		}
	}
}

func TestSummarize(t *testing.T) {
	s := summarize([]sample{{3 * time.Millisecond, 2 * time.Millisecond, 900}, {1 * time.Millisecond, 1 * time.Millisecond, 2000}, {2 * time.Millisecond, 4 * time.Millisecond, 1500}})
	if !s.ok || s.n != 3 || s.median != 2*time.Millisecond || s.p95 != 3*time.Millisecond || s.cpuMed != 2*time.Millisecond || s.rssMaxKB != 2000 {
		t.Errorf("summarize = %+v", s)
	}
	if s := summarize(nil); s.ok {
		t.Errorf("summarize(nil).ok = true")
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{ms(2345 * time.Microsecond), "2.35"},
		{ms(23450 * time.Microsecond), "23.4"},
		{ms(234500 * time.Microsecond), "234"},
		{ratio(3*time.Millisecond, 2*time.Millisecond), "1.50×"},
		{ratio(3*time.Millisecond, 0), "–"},
		{mb(20 * 1024), "20.0"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestGenerate(t *testing.T) {
	for _, size := range []int{1000, 4096, 10000, 100000, 1000000} {
		b := generate(size)
		if len(b) != size {
			t.Errorf("generate(%d): %d bytes", size, len(b))
		}
		if b[len(b)-1] != '\n' || !bytes.Contains(b, []byte("\n\n")) {
			t.Errorf("generate(%d): no header/body split or no final newline", size)
		}
		// No line may start with "From ": each agent would quote it differently and the
		// mbox byte counts would stop being comparable.
		if bytes.HasPrefix(b, []byte("From ")) || bytes.Contains(b, []byte("\nFrom ")) {
			t.Errorf("generate(%d): a line starts with \"From \"", size)
		}
	}
}
