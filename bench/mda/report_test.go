package main

import "testing"

func TestColdMedianBelow(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{"start-up (main.cf + tables), 100 fresh processes: CPU median 0.250 ms (p10 0.2, p90 0.4), minor faults median 9 (p10 8, p90 12)", true},
		{"start-up (main.cf + tables), 100 fresh processes: CPU median 0.300 ms (p10 0.2, p90 0.4), minor faults median 9 (p10 8, p90 12)", false},
		{"start-up (main.cf + tables), 100 fresh processes: CPU median 1.048 ms (p10 0.680, p90 1.635), minor faults median 31 (p10 23, p90 31)", false},
		{"garbage", false},
		{"", false},
	} {
		if got := coldMedianBelow(tc.line, 0.3); got != tc.want {
			t.Errorf("coldMedianBelow(%q) = %v, want %v", tc.line, got, tc.want)
		}
	}
}
