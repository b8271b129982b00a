package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// sample is one delivery process as wait4(2) saw it.
type sample struct {
	wall  time.Duration // fork to reaped
	cpu   time.Duration // user + system time of the process and what it waited for
	rssKB int64         // peak resident set size (ru_maxrss, KiB)
}

// summary condenses the samples of one agent and one message.
type summary struct {
	n                   int
	median, p95, cpuMed time.Duration
	rssMaxKB            int64
	ok                  bool // at least one sample
}

func summarize(ss []sample) summary {
	if len(ss) == 0 {
		return summary{}
	}
	s := summary{n: len(ss), ok: true}
	var wall, cpu []time.Duration
	for _, x := range ss {
		wall = append(wall, x.wall)
		cpu = append(cpu, x.cpu)
		s.rssMaxKB = max(s.rssMaxKB, x.rssKB)
	}
	slices.Sort(wall)
	slices.Sort(cpu)
	s.median = median(wall)
	s.p95 = percentile(wall, 95)
	s.cpuMed = median(cpu)
	return s
}

// median of sorted values: the mean of the two middle ones when their number is even.
func median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// percentile by the nearest-rank method: the smallest value with at least p% of the
// values at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	return sorted[min(max(rank, 1), n)-1]
}

// ms formats a duration in milliseconds with three significant decimals for small values.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// ratio is a/b as "1.23×", or "–" when b is zero.
func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

// mb formats KiB as MB with one decimal.
func mb(kb int64) string { return fmt.Sprintf("%.1f", float64(kb)/1024) }
