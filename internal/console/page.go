package console

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// plot draws a series as an SVG line over the window ending now: time
// left to right, TimeSinceLastSync bottom to top from 0 to the window's
// largest (at least 1 s). Stretches without a LastReplicatedTimestamp are
// gaps. Only numbers go into the markup.
func plot(s *series, now time.Time, window time.Duration) template.HTML {
	const w, h = 240.0, 48.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img"`, w, h, w, h)
	top := 1.0
	if s != nil {
		for _, l := range s.lag {
			top = max(top, l)
		}
	}
	fmt.Fprintf(&b, ` aria-label="time since last sync, last %s, up to %s">`, window, formatLag(top))
	fmt.Fprintf(&b, `<line x1="0" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#bbb" stroke-width="1"/>`, h-0.5, w, h-0.5)
	if s != nil {
		var pts []string
		flush := func() {
			if len(pts) == 1 {
				pts = append(pts, pts[0]) // a lone sample still shows
			}
			if len(pts) > 0 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="#1f6feb" stroke-width="1.5" points="%s"/>`, strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for i, at := range s.at {
			if s.lag[i] < 0 {
				flush()
				continue
			}
			x := w * (1 - float64(now.Sub(at))/float64(window))
			y := (h - 2) * (1 - s.lag[i]/top)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", max(x, 0), y+1))
		}
		flush()
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

const pageTemplate = `{{define "page"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>efsd console</title>
<link rel="icon" href="/console/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/console/static/style.css">
<script src="/console/static/app.js" defer></script>
</head>
<body>
<header><h1>efsd</h1><span class="note">read-only console</span><span id="refresh-status" class="note"></span></header>
<main id="console" data-refresh-ms="{{.RefreshMS}}">{{template "body" .}}</main>
</body>
</html>{{end}}
{{define "body"}}<p class="note">As of <time id="as-of" datetime="{{.Now}}">{{.Now}}</time></p>
{{range .Errors}}<p class="error">{{.}}</p>{{end}}
<section>
<h2>Replication configurations</h2>
{{if .Replications}}<table id="replications">
<thead><tr><th>ID</th><th>Source</th><th>Destination</th><th>Status</th><th>Status message</th><th>Last replicated</th><th>Time since last sync</th><th>Over the last {{.Window}}</th></tr></thead>
<tbody>{{range .Replications}}
<tr data-replication="{{.ID}}"><td>{{.ID}}</td><td>{{.Source}}</td><td>{{.Dest}}</td><td class="status">{{.Status}}</td><td>{{.Message}}</td><td>{{.LastReplicated}}</td><td class="lag">{{.Lag}}</td><td>{{.Plot}}</td></tr>{{end}}
</tbody></table>{{else}}<p>None.</p>{{end}}
</section>
<section>
<h2>File systems</h2>
{{range .Regions}}<h3>Account {{.Account}} · {{.Region}}</h3>
<table class="file-systems">
<thead><tr><th>ID</th><th>Name</th><th>State</th><th>Size</th><th>Mode</th><th>Replication overwrite</th><th>Mount targets</th><th>Access points</th></tr></thead>
<tbody>{{range .FileSystems}}
<tr data-file-system="{{.ID}}"><td>{{.ID}}</td><td>{{.Name}}</td><td>{{.State}}</td><td title="measured {{.SizeAt}}">{{bytes .Size}}</td><td>{{.Performance}}, {{.Throughput}}{{if .Zone}}, One Zone ({{.Zone}}){{end}}</td><td>{{.Protection}}</td>
<td>{{range .MountTargets}}<div>{{.ID}} {{.IP}} ({{.ZoneName}}) {{.State}}</div>{{else}}—{{end}}</td>
<td>{{range .AccessPoints}}<div>{{.ID}} {{if .RootPath}}{{.RootPath}}{{else}}/{{end}}{{with .PosixUser}} as {{.UID}}:{{.GID}}{{end}} {{.State}}</div>{{else}}—{{end}}</td></tr>{{end}}
</tbody></table>{{if .More}}<p class="note">Only the first 500 are shown.</p>{{end}}
{{else}}<p>None.</p>{{end}}
</section>{{end}}`
