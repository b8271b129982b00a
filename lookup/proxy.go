package lookup

import (
	"context"
	"fmt"
	"sync"
	"time"

	"vdeliver/lookup/proxymap"
)

// Proxymap is the connection to Postfix's proxymap(8) server that the proxy: tables of a
// process share. It is made when the first proxy: table is opened, with the privileges
// the process has then, and kept: a set-uid delivery opens its tables as root before it
// switches to the recipient, and the connection serves every lookup after the switch.
type Proxymap struct {
	socket string
	once   sync.Once
	conn   *proxymap.Conn // nil: the socket could not be opened
}

// NewProxymap names the proxymap socket ($queue_directory/private/proxymap); nothing is
// opened yet.
func NewProxymap(socket string) *Proxymap { return &Proxymap{socket: socket} }

// openTimeout bounds the open request (and the server's announcement), made while the
// tables are opened, before any delivery deadline exists.
const openTimeout = 30 * time.Second

// connect dials once. A socket that cannot be opened (missing, not accessible, refused)
// gives nil: the table falls back to postmap(1). A server that is there but breaks the
// protocol fails the open request, an error.
func (p *Proxymap) connect() *proxymap.Conn {
	p.once.Do(func() { p.conn, _ = proxymap.Dial(p.socket) })
	return p.conn
}

// Close closes the connection, if one was made.
func (p *Proxymap) Close() error {
	if p == nil || p.conn == nil {
		return nil
	}
	return p.conn.Close()
}

// proxyTable is proxy:TYPE:NAME asked through proxymap(8): Postfix's own code reads the
// table, with the server's privileges and its pooled database connections.
type proxyTable struct {
	base
	conn  *proxymap.Conn
	table string // TYPE:NAME, without proxy:
	inst  uint32
	mu    sync.Mutex
	flags uint32 // as the server last reported them; sent with every lookup
}

// openProxy opens inner (TYPE:NAME) on the proxymap server. It returns (nil, nil) when
// the socket cannot be used, so that the caller falls back to postmap(1).
func openProxy(spec, inner string, fixedByType bool, opt *Options) (Table, error) {
	conn := opt.Proxymap.connect()
	if conn == nil {
		return nil, nil
	}
	// virtual(8)'s flags: its tables are locked around each access, UTF-8 checked when
	// smtputf8 is on, and paranoid for paths and ids (no $n substitution, no
	// unauthenticated types). Keys are never folded here: callers fold addresses.
	inst := uint32(proxymap.FlagLock | proxymap.FlagUTF8Request)
	if opt.Paranoid {
		inst |= proxymap.FlagParanoid
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	st, flags, err := conn.Open(ctx, inner, inst)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", spec, err)
	}
	switch st {
	case proxymap.StatusOK:
	case proxymap.StatusDeny:
		return nil, fmt.Errorf("table %s: proxymap(8) at %s does not serve %s: list proxy:%s in proxy_read_maps of that Postfix's main.cf (its default names every proxy: table of main.cf): %w",
			spec, conn.Path(), inner, inner, ErrNotApproved)
	case proxymap.StatusBad:
		return nil, fmt.Errorf("table %s: proxymap(8) at %s calls the open request for %s invalid", spec, conn.Path(), inner)
	default:
		return nil, fmt.Errorf("table %s: proxymap(8) at %s: open %s: unexpected status %d", spec, conn.Path(), inner, st)
	}
	// The server knows whether the table is fixed-key or a pattern table (maps_find asks
	// pattern tables only with the full address); a table it could not open reports
	// neither, and its lookups fail anyway.
	fixed := fixedByType
	switch {
	case flags&proxymap.FlagFixed != 0:
		fixed = true
	case flags&proxymap.FlagPattern != 0:
		fixed = false
	}
	return &proxyTable{base: base{name: spec, fixed: fixed}, conn: conn, table: inner, inst: inst, flags: flags}, nil
}

// Lookup asks the server. Not found is a miss; every other status, and any failure of
// the connection, is an error: the delivery defers.
func (t *proxyTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	t.mu.Lock()
	flags := t.flags
	t.mu.Unlock()
	st, newFlags, value, err := t.conn.Lookup(ctx, t.table, t.inst, flags, key)
	if err != nil {
		return "", false, err
	}
	t.mu.Lock()
	t.flags = newFlags
	t.mu.Unlock()
	switch st {
	case proxymap.StatusOK:
		return value, true, nil
	case proxymap.StatusNoKey:
		return "", false, nil
	case proxymap.StatusRetry:
		return "", false, fmt.Errorf("proxymap(8): lookup of %q in %s: temporary error (see the Postfix log)", key, t.table)
	case proxymap.StatusConfig:
		return "", false, fmt.Errorf("proxymap(8): lookup of %q in %s: table configuration error (see the Postfix log)", key, t.table)
	case proxymap.StatusDeny:
		return "", false, fmt.Errorf("proxymap(8) no longer serves %s: list proxy:%s in proxy_read_maps", t.table, t.table)
	default:
		return "", false, fmt.Errorf("proxymap(8): lookup of %q in %s: status %d", key, t.table, st)
	}
}
