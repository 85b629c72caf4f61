// Package console is efsd's read-only web console, served on the admin
// listener under /console/: every account's file systems by region with
// their size, mount targets and access points, and the replication
// configurations with their status, StatusMessage, LastReplicatedTimestamp
// and a plot of TimeSinceLastSync (EFS's own CloudWatch metric) over the
// last hour. Pages are rendered on the server (html/template); a small
// script re-fetches the page's body every few seconds. Nothing on it
// changes anything: it only reads, through the same domain calls as the
// API.
//
// The plot needs a history that the store does not keep: a sampler
// (Run) records each configuration's TimeSinceLastSync every SampleEvery,
// in memory, for Window.
package console

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/efsd/efsd/internal/efs"
)

// Service is what the console reads: *efs.Service.
type Service interface {
	DescribeFileSystems(ctx context.Context, p efs.Principal, in efs.DescribeFileSystemsInput) (*efs.DescribeFileSystemsOutput, error)
	DescribeMountTargets(ctx context.Context, p efs.Principal, in efs.DescribeMountTargetsInput) (*efs.MountTargetPage, error)
	DescribeAccessPoints(ctx context.Context, p efs.Principal, apID, fsID, token string, max int) (*efs.AccessPointPage, error)
	Replications(ctx context.Context) ([]*efs.Replication, error)
}

// Options configure a Console.
type Options struct {
	Service Service
	// Accounts and Regions are where file systems are looked for: the
	// accounts of the configured credentials, the regions served.
	Accounts, Regions []string
	// Now is the domain's clock (it stamped LastReplicatedTimestamp).
	Now func() time.Time
	// SampleEvery is how often TimeSinceLastSync is sampled (default
	// 10 s); Window how much of it is kept and plotted (default 1 h).
	SampleEvery, Window time.Duration
	// Refresh is how often the page re-fetches itself (default 5 s).
	Refresh time.Duration
	Logger  *slog.Logger
}

// maxFileSystems bounds the file systems one page lists per account and
// region: the page stays small, and says how many it left out.
const maxFileSystems = 500

// Console serves the pages and keeps the lag history.
type Console struct {
	o    Options
	tmpl *template.Template
	mux  *http.ServeMux

	mu      sync.Mutex
	history map[string]*series // by replication configuration ID
}

// series is one configuration's TimeSinceLastSync samples, oldest first;
// a sample with a negative lag is a time with no LastReplicatedTimestamp.
type series struct {
	at  []time.Time
	lag []float64
}

//go:embed static
var static embed.FS

// New returns a console; Run feeds its plots.
func New(o Options) *Console {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = 10 * time.Second
	}
	if o.Window <= 0 {
		o.Window = time.Hour
	}
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Accounts = slices.Sorted(slices.Values(o.Accounts))
	o.Regions = slices.Sorted(slices.Values(o.Regions))
	c := &Console{o: o, history: map[string]*series{}}
	c.tmpl = template.Must(template.New("page").Funcs(template.FuncMap{"bytes": humanBytes}).Parse(pageTemplate))
	c.mux = http.NewServeMux()
	c.mux.HandleFunc("GET /console/{$}", c.page(false))
	c.mux.HandleFunc("GET /console/body", c.page(true))
	c.mux.Handle("GET /console/static/", http.StripPrefix("/console/", http.FileServerFS(static)))
	return c
}

// ServeHTTP serves /console/ and below.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Everything comes from here; no inline script, no frames.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

// Run samples every configuration's TimeSinceLastSync until ctx ends.
func (c *Console) Run(ctx context.Context) {
	t := time.NewTicker(c.o.SampleEvery)
	defer t.Stop()
	for {
		c.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Console) sample(ctx context.Context) {
	reps, err := c.o.Service.Replications(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.o.Logger.Warn("console: list replications", "err", err)
		}
		return
	}
	now := c.o.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	live := map[string]bool{}
	for _, r := range reps {
		live[r.ID] = true
		s := c.history[r.ID]
		if s == nil {
			s = &series{}
			c.history[r.ID] = s
		}
		lag := -1.0
		if !r.LastReplicatedAt.IsZero() {
			lag = max(now.Sub(r.LastReplicatedAt).Seconds(), 0)
		}
		s.at, s.lag = append(s.at, now), append(s.lag, lag)
		// Older than the window: dropped (the slices are re-sliced, and
		// copied down once half of their room is behind).
		cut := sort.Search(len(s.at), func(i int) bool { return now.Sub(s.at[i]) <= c.o.Window })
		s.at, s.lag = s.at[cut:], s.lag[cut:]
		if cap(s.at) > 2*len(s.at)+16 {
			s.at, s.lag = slices.Clone(s.at), slices.Clone(s.lag)
		}
	}
	for id := range c.history {
		if !live[id] {
			delete(c.history, id)
		}
	}
}

// page renders the whole page, or only its body (what the script fetches).
func (c *Console) page(bodyOnly bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := c.view(r.Context())
		name := "page"
		if bodyOnly {
			name = "body"
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := c.tmpl.ExecuteTemplate(w, name, v); err != nil {
			c.o.Logger.Warn("console: render", "err", err)
		}
	}
}

// pageView is what the template shows.
type pageView struct {
	Now          string
	RefreshMS    int64
	Window       string
	Regions      []regionView
	Replications []repView
	Errors       []string
}

type regionView struct {
	Account, Region string
	FileSystems     []fsView
	More            bool // more than maxFileSystems
}

type fsView struct {
	ID, Name, State, Performance, Throughput, Protection, Zone string
	Size                                                       int64
	SizeAt                                                     string
	MountTargets                                               []*efs.MountTarget
	AccessPoints                                               []*efs.AccessPoint
}

type repView struct {
	ID, Source, Dest, Status, Message, LastReplicated, Lag string
	Plot                                                   template.HTML
}

func (c *Console) view(ctx context.Context) *pageView {
	now := c.o.Now()
	v := &pageView{Now: now.UTC().Format(time.RFC3339), RefreshMS: c.o.Refresh.Milliseconds(), Window: c.o.Window.String()}
	fail := func(what string, err error) {
		v.Errors = append(v.Errors, fmt.Sprintf("%s: %v", what, err))
	}
	for _, acct := range c.o.Accounts {
		for _, region := range c.o.Regions {
			rv, err := c.region(ctx, efs.Principal{Account: acct, Region: region})
			if err != nil {
				fail("file systems of "+acct+" in "+region, err)
			}
			if rv != nil && len(rv.FileSystems) > 0 {
				v.Regions = append(v.Regions, *rv)
			}
		}
	}
	reps, err := c.o.Service.Replications(ctx)
	if err != nil {
		fail("replication configurations", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range reps {
		rv := repView{ID: r.ID, Source: side(r.Source, r.Peer, r.PeerSide == efs.PeerSource), Dest: side(r.Dest, r.Peer, r.PeerSide == efs.PeerDestination),
			Status: r.Status, Message: r.StatusMessage, LastReplicated: "never", Lag: "—"}
		if !r.LastReplicatedAt.IsZero() {
			rv.LastReplicated = r.LastReplicatedAt.UTC().Format(time.RFC3339)
			rv.Lag = formatLag(max(now.Sub(r.LastReplicatedAt).Seconds(), 0))
		}
		rv.Plot = plot(c.history[r.ID], now, c.o.Window)
		v.Replications = append(v.Replications, rv)
	}
	return v
}

// side names one side of a configuration, and the deployment holding it
// when that is a peer.
func side(k efs.FSKey, peer string, remote bool) string {
	s := k.Account + " · " + k.Region + " · " + k.ID
	if remote {
		s += " (deployment " + peer + ")"
	}
	return s
}

// region lists an account's file systems in a region, with their mount
// targets and access points.
func (c *Console) region(ctx context.Context, p efs.Principal) (*regionView, error) {
	rv := &regionView{Account: p.Account, Region: p.Region}
	marker := ""
	for {
		out, err := c.o.Service.DescribeFileSystems(ctx, p, efs.DescribeFileSystemsInput{Marker: marker, MaxItems: 100})
		if err != nil {
			return rv, err
		}
		for _, fs := range out.FileSystems {
			if len(rv.FileSystems) == maxFileSystems {
				rv.More = true
				return rv, nil
			}
			fv, err := c.fileSystem(ctx, p, fs)
			if err != nil {
				return rv, err
			}
			rv.FileSystems = append(rv.FileSystems, fv)
		}
		if marker = out.NextMarker; marker == "" {
			return rv, nil
		}
	}
}

func (c *Console) fileSystem(ctx context.Context, p efs.Principal, fs *efs.FileSystem) (fsView, error) {
	fv := fsView{ID: fs.ID, State: string(fs.State), Performance: fs.PerformanceMode, Throughput: fs.ThroughputMode,
		Protection: fs.Protection, Zone: fs.AvailabilityZoneName, Size: fs.Size.Bytes}
	if !fs.Size.At.IsZero() {
		fv.SizeAt = fs.Size.At.UTC().Format(time.RFC3339)
	}
	for _, t := range fs.Tags {
		if t.Key == "Name" {
			fv.Name = t.Value
		}
	}
	marker := ""
	for {
		mts, err := c.o.Service.DescribeMountTargets(ctx, p, efs.DescribeMountTargetsInput{FileSystemID: fs.ID, Marker: marker, MaxItems: 100})
		if err != nil {
			return fv, fmt.Errorf("mount targets of %s: %w", fs.ID, err)
		}
		fv.MountTargets = append(fv.MountTargets, mts.MountTargets...)
		if marker = mts.NextMarker; marker == "" {
			break
		}
	}
	token := ""
	for {
		aps, err := c.o.Service.DescribeAccessPoints(ctx, p, "", fs.ID, token, 100)
		if err != nil {
			return fv, fmt.Errorf("access points of %s: %w", fs.ID, err)
		}
		fv.AccessPoints = append(fv.AccessPoints, aps.AccessPoints...)
		if token = aps.Next; token == "" {
			break
		}
	}
	return fv, nil
}

// formatLag shows seconds as EFS's console would: s, min, h.
func formatLag(s float64) string {
	switch {
	case s < 10:
		return fmt.Sprintf("%.1f s", s)
	case s < 60:
		return fmt.Sprintf("%.0f s", s)
	case s < 3600:
		return fmt.Sprintf("%.1f min", s/60)
	default:
		return fmt.Sprintf("%.1f h", s/3600)
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), -1
	for f >= unit && i < 5 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTPE"[i])
}
