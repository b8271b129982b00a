package confcheck

import (
	"fmt"

	"vdeliver/deliver"
)

// quotas: vdeliver_overquota_status must be bounce or defer, and every quota definition
// vdeliver_quota_maps can be seen to answer must parse; either mistake defers deliveries.
func (c *checker) quotas() {
	if _, err := deliver.ParseOverquotaStatus(c.get("vdeliver_overquota_status")); err != nil {
		file, line := c.where("vdeliver_overquota_status")
		c.add(file, line, Error, "parameter-error", err.Error()+": every delivery defers",
			"vdeliver_overquota_status = bounce (the default), or defer")
	}
	c.values("vdeliver_quota_maps", func(v, key, file string, line int) {
		if _, err := deliver.ParseQuota(v); err != nil {
			// The parser's error names the value and what is wrong with it.
			of := ""
			if key != "" {
				of = " (the answer for " + key + ")"
			}
			c.add(file, line, Error, "quota-invalid", fmt.Sprintf("vdeliver_quota_maps: %v%s: deliveries to it defer", err, of),
				`give a Maildir++ quota definition: bytes and messages as "1000000S" or "1000000S,1000C"`)
		}
	})
}
