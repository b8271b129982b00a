package maincf

import (
	"sort"
	"strings"
)

// defaultConfigDir is Postfix's compiled-in configuration directory.
const defaultConfigDir = "/etc/postfix"

// staticDefaults are Postfix's built-in defaults ("postconf -d", Postfix 3.7) for the
// parameters vdeliver reads or that their defaults refer to, and the defaults of
// vdeliver's own vdeliver_* parameters, which Postfix does not know. Sorted by name: it is
// searched with sort.Search, and a slice of constants costs nothing at start-up.
// myhostname, mydomain and config_directory are computed in defaultValue.
var staticDefaults = []struct{ name, value string }{
	{"alternate_config_directories", ""},
	{"bounce_queue_lifetime", "5d"},
	{"command_time_limit", "1000s"},
	{"compatibility_level", "0"},
	{"default_database_type", "hash"},
	{"default_delivery_status_filter", ""},
	{"default_destination_concurrency_limit", "20"},
	{"default_destination_recipient_limit", "50"},
	{"deliver_lock_attempts", "20"},
	{"deliver_lock_delay", "1s"},
	{"double_bounce_sender", "double-bounce"},
	{"enable_original_recipient", "yes"},
	{"inet_interfaces", "all"},
	{"lmtp_line_length_limit", "998"},
	{"mail_owner", "postfix"},
	{"mail_spool_directory", "/var/mail"},
	{"maximal_queue_lifetime", "5d"},
	{"message_size_limit", "10240000"},
	{"multi_instance_directories", ""},
	{"mydestination", "$myhostname, localhost.$mydomain, localhost"},
	{"myorigin", "$myhostname"},
	{"owner_request_special", "yes"},
	{"propagate_unmatched_extensions", "canonical, virtual"},
	{"proxy_interfaces", ""},
	{"proxymap_service_name", "proxymap"},
	{"queue_directory", "/var/spool/postfix"},
	{"recipient_delimiter", ""},
	// Postfix 3.7 ties SMTPUTF8 to the compatibility level: "no" below level 1.
	{"smtputf8_enable", "${{$compatibility_level} <level {1} ? {no} : {yes}}"},
	{"soft_bounce", "no"},
	{"stale_lock_time", "500s"},
	{"strict_mailbox_ownership", "yes"},
	// vdeliver's own additions beyond virtual(8), all off by default.
	{"vdeliver_extension_folders", "no"},
	{"vdeliver_folder_autocreate", "no"},
	{"vdeliver_maildir_size_in_names", "no"},
	{"vdeliver_overquota_status", "bounce"},
	{"vdeliver_quota_maps", ""},
	{"virtual_alias_address_length_limit", "1000"},
	{"virtual_alias_domains", "$virtual_alias_maps"},
	{"virtual_alias_expansion_limit", "1000"},
	{"virtual_alias_maps", "$virtual_maps"},
	{"virtual_alias_recursion_limit", "1000"},
	{"virtual_delivery_status_filter", "$default_delivery_status_filter"},
	// The per-transport limits exist in Postfix once master.cf has a "virtual" service,
	// as the stock master.cf does.
	{"virtual_destination_concurrency_limit", "$default_destination_concurrency_limit"},
	{"virtual_destination_recipient_limit", "$default_destination_recipient_limit"},
	{"virtual_gid_maps", ""},
	{"virtual_mailbox_base", ""},
	{"virtual_mailbox_domains", "$virtual_mailbox_maps"},
	{"virtual_mailbox_limit", "51200000"},
	{"virtual_mailbox_lock", "fcntl, dotlock"},
	{"virtual_mailbox_maps", ""},
	{"virtual_maps", ""},
	{"virtual_minimum_uid", "100"},
	{"virtual_transport", "virtual"},
	{"virtual_uid_maps", ""},
}

// defaultValue returns Postfix's default for name.
func (c *Config) defaultValue(name string) (string, bool) {
	switch name {
	case "myhostname":
		// mail_params.c check_myhostname(): a bare host name gets a domain, the one
		// main.cf gives if any.
		h := c.host()
		if strings.IndexByte(h, '.') >= 0 {
			return h, true
		}
		if d, ok := c.params["mydomain"]; ok {
			if strings.IndexByte(d.value, '$') < 0 {
				return h + "." + d.value, true
			}
			return h + ".${mydomain}", true
		}
		return h + ".localdomain", true
	case "mydomain":
		// mail_params.c check_mydomain(): myhostname without its first label. mydomain
		// is hidden while myhostname is expanded, so "myhostname = $mydomain" cannot
		// loop here.
		h, _ := c.raw("myhostname", "mydomain")
		h, err := c.expand(h, "mydomain")
		if err != nil {
			return "localdomain", true
		}
		if i := strings.IndexByte(h, '.'); i >= 0 {
			return h[i+1:], true
		}
		return "localdomain", true
	case "config_directory":
		if c.dir != "" {
			return c.dir, true
		}
		return defaultConfigDir, true
	}
	i := sort.Search(len(staticDefaults), func(i int) bool { return staticDefaults[i].name >= name })
	if i < len(staticDefaults) && staticDefaults[i].name == name {
		return staticDefaults[i].value, true
	}
	return "", false
}

// defaultUnit is the time unit Postfix assumes for a number without one.
func defaultUnit(name string) byte {
	switch name {
	case "maximal_queue_lifetime", "bounce_queue_lifetime":
		return 'd'
	case "delay_warning_time":
		return 'h'
	}
	return 's'
}
