package mongodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/engine"
)

// Var is the variable that selects MongoDB, as Fly's guide sets it:
// fly secrets set MONGODB_URI="mongodb+srv://user:pass@cluster.mongodb.net/dbname".
const Var = "MONGODB_URI"

// DefaultDatabase is the database used when the URI names none.
const DefaultDatabase = "flystorage"

// Driver opens MongoDB (Atlas, or any server speaking its wire protocol)
// when MONGODB_URI is a mongodb:// or mongodb+srv:// URI.
var Driver = engine.Driver{
	Name:    "mongodb",
	Var:     Var,
	Schemes: []string{"mongodb", "mongodb+srv"},
	Vars: append([]config.Var{{Name: Var, Group: "Database", Secret: true, Example: "mongodb+srv://user:password@cluster.mongodb.net/flystorage",
		Doc: "MongoDB (`mongodb://`, `mongodb+srv://`), as Atlas gives it; the database is the URI's path, flystorage when it has none. Set it instead of DATABASE_URL or DATABASE_PATH."}},
		poolVars()...),
	Load: Load,
}

// poolVars are the DB_* variables the driver maps: every one but
// DB_MAX_CONN_LIFETIME, which the Go driver has no setting for.
func poolVars() []config.Var {
	var vars []config.Var
	for _, v := range config.PoolVars {
		if v.Name != "DB_MAX_CONN_LIFETIME" {
			vars = append(vars, v)
		}
	}
	return vars
}

// Source is MongoDB configured from MONGODB_URI and the DB_* variables,
// not yet connected.
type Source struct {
	uri      string
	database string
	redacted string
	srv      bool
	tls      bool // as far as the URI says; SRV implies TLS
	pool     config.Pool
}

var _ storage.Source = (*Source)(nil)

// Load checks uri with the driver's own parser, without a network: a
// mongodb+srv:// URI's DNS records (its hosts, and options such as
// authSource) are looked up by Open. Its errors are *config.Error values
// naming MONGODB_URI or the DB_* variable, never holding the password.
func Load(uri string, getenv func(string) string) (storage.Source, error) {
	uri = strings.TrimSpace(uri)
	cs, err := parseOffline(uri)
	if err != nil {
		return nil, &config.Error{Var: Var, Msg: scrub(err.Error(), uri)}
	}
	pool, err := config.LoadPool(config.NewEnv(getenv))
	if err != nil {
		return nil, err
	}
	if pool.MaxConns > 0 && pool.MinConns == 0 && cs.MinPoolSizeSet && cs.MinPoolSize > uint64(pool.MaxConns) {
		return nil, &config.Error{Var: "DB_MAX_CONNS", Msg: fmt.Sprintf("%d is less than the URI's minPoolSize (%d)", pool.MaxConns, cs.MinPoolSize)}
	}
	if pool.MinConns > 0 && pool.MaxConns == 0 && cs.MaxPoolSizeSet && cs.MaxPoolSize != 0 && uint64(pool.MinConns) > cs.MaxPoolSize {
		return nil, &config.Error{Var: "DB_MIN_CONNS", Msg: fmt.Sprintf("%d is more than the URI's maxPoolSize (%d)", pool.MinConns, cs.MaxPoolSize)}
	}
	s := &Source{
		uri:      uri,
		database: cs.Database,
		redacted: Redact(uri),
		srv:      cs.Scheme == connstring.SchemeMongoDBSRV,
		pool:     pool,
	}
	if s.database == "" {
		s.database = DefaultDatabase
	}
	// The SRV scheme turns TLS on unless the URI turns it off.
	s.tls = cs.SSL || (s.srv && !cs.SSLSet)
	return s, nil
}

// parseOffline parses uri with the driver's connstring package. That
// parser resolves a mongodb+srv:// host in DNS as it goes, so an SRV URI
// is checked as the equivalent mongodb:// one, its SRV-only options and
// its single host checked here, and the parse marked SRV again.
func parseOffline(uri string) (*connstring.ConnString, error) {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok || (scheme != connstring.SchemeMongoDB && scheme != connstring.SchemeMongoDBSRV) {
		return nil, errors.New("must start with mongodb:// or mongodb+srv:// (the connection string Atlas shows under Connect, Drivers)")
	}
	// The driver's parser reports a bad escape with the text around it,
	// which would be part of the password.
	if at := strings.Index(rest, "@"); at >= 0 {
		if _, pass, ok := strings.Cut(rest[:at], ":"); ok {
			if _, err := url.PathUnescape(pass); err != nil {
				return nil, errors.New("the password is not valid percent-encoding: write each of : / ? # [ ] @ % in it as %XX (e.g. @ as %40)")
			}
		}
	}
	srv := scheme == connstring.SchemeMongoDBSRV
	check := uri
	if srv {
		var err error
		if check, err = srvAsPlain(rest); err != nil {
			return nil, err
		}
	}
	cs, err := connstring.ParseAndValidate(check)
	if err != nil {
		return nil, err
	}
	if srv {
		cs.Scheme = connstring.SchemeMongoDBSRV
		if cs.DirectConnectionSet && cs.DirectConnection {
			return nil, errors.New("directConnection=true cannot be used with mongodb+srv://")
		}
	}
	return cs, nil
}

// srvAsPlain checks what is particular to a mongodb+srv:// URI (one host
// without a port; srvServiceName and srvMaxHosts) and returns it as a
// mongodb:// URI without those options.
func srvAsPlain(rest string) (string, error) {
	hostStart := 0
	if at := strings.Index(rest, "@"); at >= 0 {
		hostStart = at + 1
	}
	hostEnd := len(rest)
	if i := strings.IndexAny(rest[hostStart:], "/?"); i >= 0 {
		hostEnd = hostStart + i
	}
	host := rest[hostStart:hostEnd]
	if host == "" || strings.Contains(host, ",") {
		return "", errors.New("a mongodb+srv:// URI names exactly one host (the cluster's, e.g. cluster0.abcde.mongodb.net)")
	}
	if _, _, err := net.SplitHostPort(host); err == nil {
		return "", errors.New("a mongodb+srv:// URI's host takes no port: DNS gives the ports")
	}
	base, query, _ := strings.Cut(rest, "?")
	var kept []string
	for _, pair := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' }) {
		k, v, _ := strings.Cut(pair, "=")
		switch strings.ToLower(k) {
		case "srvmaxhosts":
			if n, err := strconv.Atoi(v); err != nil || n < 0 {
				return "", fmt.Errorf("srvMaxHosts %q is not a whole number of 0 or more", v)
			}
		case "srvservicename":
			if len(v) < 1 || len(v) > 62 {
				return "", errors.New("srvServiceName must be 1 to 62 characters")
			}
		default:
			kept = append(kept, pair)
		}
	}
	plain := connstring.SchemeMongoDB + "://" + base
	if len(kept) > 0 {
		plain += "?" + strings.Join(kept, "&")
	}
	return plain, nil
}

// secretOptions are URI options whose values are secrets: a client
// key's password, and AWS session tokens in authMechanismProperties.
var secretOptions = map[string]bool{
	"tlscertificatekeyfilepassword":   true,
	"sslclientcertificatekeypassword": true,
	"authmechanismproperties":         true,
}

const mask = "xxxxx"

// Redact returns uri with its password, and the values of options that
// hold secrets, replaced by xxxxx.
func Redact(uri string) string {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return mask
	}
	if at := strings.Index(rest, "@"); at >= 0 {
		if user, _, ok := strings.Cut(rest[:at], ":"); ok {
			rest = user + ":" + mask + rest[at:]
		}
	}
	base, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery {
		pairs := strings.Split(query, "&")
		for i, pair := range pairs {
			if k, _, _ := strings.Cut(pair, "="); secretOptions[strings.ToLower(k)] {
				pairs[i] = k + "=" + mask
			}
		}
		base += "?" + strings.Join(pairs, "&")
	}
	return scheme + "://" + base
}

// scrub removes uri's password, as written and unescaped, from msg.
func scrub(msg, uri string) string {
	_, rest, _ := strings.Cut(uri, "://")
	at := strings.Index(rest, "@")
	if at < 0 {
		return msg
	}
	_, pass, ok := strings.Cut(rest[:at], ":")
	if !ok || pass == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, pass, mask)
	if plain, err := url.PathUnescape(pass); err == nil && plain != "" {
		msg = strings.ReplaceAll(msg, plain, mask)
	}
	return msg
}

// Database is the database the app keeps its collections in.
func (s *Source) Database() string { return s.database }

// Redacted is the URI with the password masked.
func (s *Source) Redacted() string { return s.redacted }

// LogValue logs the effective configuration, the password masked.
func (s *Source) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("backend", "mongodb"),
		slog.String("url", s.redacted),
		slog.String("database", s.database),
		slog.Bool("tls", s.tls),
	}
	if s.pool.MaxConns > 0 {
		attrs = append(attrs, slog.Int64("max_conns", int64(s.pool.MaxConns)))
	}
	if s.pool.ConnectTimeout > 0 {
		attrs = append(attrs, slog.Duration("connect_timeout", s.pool.ConnectTimeout))
	}
	return slog.GroupValue(attrs...)
}

// clientOptions are the driver's options: the URI's, with every DB_*
// variable that is set over them, and the app's defaults where neither
// says. ApplyURI resolves a mongodb+srv:// host in DNS.
func (s *Source) clientOptions() (*options.ClientOptions, error) {
	o := options.Client().ApplyURI(s.uri)
	if err := o.Validate(); err != nil {
		// A mongodb+srv:// host is looked up now: a name that does not
		// exist is the variable's fault, a lookup that fails is the
		// network's.
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, &config.Error{Var: Var, Msg: fmt.Sprintf("no MongoDB cluster is named so in DNS (%s): check the host name Atlas shows under Connect, Drivers",
				scrub(dnsErr.Error(), s.uri))}
		}
		if errors.As(err, &dnsErr) {
			return nil, fmt.Errorf("%w: looking up %s's hosts in DNS: %s", storage.ErrUnavailable, Var, scrub(err.Error(), s.uri))
		}
		return nil, &config.Error{Var: Var, Msg: scrub(err.Error(), s.uri)}
	}
	p := s.pool
	if p.MaxConns > 0 || o.MaxPoolSize == nil {
		o.SetMaxPoolSize(uint64(p.WithDefaults().MaxConns))
	}
	if p.MinConns > 0 {
		o.SetMinPoolSize(uint64(p.MinConns))
	}
	if p.MaxConnIdleTime > 0 || o.MaxConnIdleTime == nil {
		o.SetMaxConnIdleTime(p.WithDefaults().MaxConnIdleTime)
	}
	// DB_CONNECT_TIMEOUT bounds both dialling and server selection, so
	// that a server that is down fails a request in that time rather than
	// after the driver's default of 30 seconds.
	if p.ConnectTimeout > 0 || o.ConnectTimeout == nil {
		o.SetConnectTimeout(p.WithDefaults().ConnectTimeout)
	}
	if p.ConnectTimeout > 0 || o.ServerSelectionTimeout == nil {
		o.SetServerSelectionTimeout(p.WithDefaults().ConnectTimeout)
	}
	if o.AppName == nil {
		o.SetAppName("flystorage")
	}
	if err := o.Validate(); err != nil {
		return nil, &config.Error{Var: Var, Msg: scrub(err.Error(), s.uri)}
	}
	return o, nil
}

// connect makes a client; the driver connects lazily, so the caller pings.
func (s *Source) connect(monitor *poolMonitor) (*mongo.Client, *options.ClientOptions, error) {
	o, err := s.clientOptions()
	if err != nil {
		return nil, nil, err
	}
	if monitor != nil {
		o.SetPoolMonitor(monitor.eventMonitor())
	}
	client, err := mongo.Connect(o)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", s.redacted, translate(err))
	}
	return client, o, nil
}

// Open connects, checks the server answers, warns when the connection
// crosses a network in plaintext, and applies pending schema steps:
// MongoDB's are collections and indexes, created idempotently, so the app
// applies them at start whatever MIGRATE_ON_START says.
func (s *Source) Open(ctx context.Context, o storage.OpenOptions) (storage.Database, error) {
	return s.open(ctx, o)
}

func (s *Source) open(ctx context.Context, o storage.OpenOptions) (*Store, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	monitor := &poolMonitor{}
	client, co, err := s.connect(monitor)
	if err != nil {
		return nil, err
	}
	st := newStore(client, s.database, monitor, int64(*co.MaxPoolSize))
	st.describe = map[string]string{"backend": "mongodb", "url": s.redacted, "database": s.database,
		"tls": strconv.FormatBool(co.TLSConfig != nil)}
	if err := st.Ping(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("connecting to %s: %w", s.redacted, err)
	}
	if co.TLSConfig == nil {
		for _, h := range co.Hosts {
			if host, _, err := net.SplitHostPort(h); err == nil {
				h = host
			}
			if !engine.PrivateHost(h) {
				log.Warn("the MongoDB connection is not encrypted: anyone on the network path can read it; use the mongodb+srv:// URI Atlas gives, or add tls=true to MONGODB_URI (docs/external-databases.md)",
					"host", h)
				break
			}
		}
	}
	if s.pool.MaxConnLifetime > 0 {
		log.Info("DB_MAX_CONN_LIFETIME has no effect on MongoDB: the Go driver does not recycle connections by age")
	}
	m := newMigrator(st.db, log)
	if _, err := m.up(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("applying the MongoDB schema steps: %w", err)
	}
	return st, nil
}

// Migrations opens the schema steps on a client of their own.
func (s *Source) Migrations(ctx context.Context) (storage.Migrations, error) {
	client, _, err := s.connect(nil)
	if err != nil {
		return nil, err
	}
	if err := client.Ping(ctx, nil); err != nil {
		client.Disconnect(context.Background())
		return nil, fmt.Errorf("connecting to %s: %w", s.redacted, translate(err))
	}
	return &Migrations{m: newMigrator(client.Database(s.database), slog.Default()), client: client,
		where: s.redacted + " (database " + s.database + ")"}, nil
}
