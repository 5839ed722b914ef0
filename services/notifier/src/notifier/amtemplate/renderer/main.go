// Command opsmesh-amtemplate renders Alertmanager notification templates with
// Alertmanager's own template package, for the opsmesh notifier.
//
// Fidelity comes from running Alertmanager's code, not from imitating it: template sets
// are loaded with template.FromGlobs (the embedded default.tmpl and email.tmpl first,
// then the configuration's `templates:` globs), the data is built by Template.Data from
// the alerts of one notification, and every field is executed with ExecuteTextString or
// ExecuteHTMLString (html/template's contextual escaping for email bodies), or
// DeepCopyWithTemplate for PagerDuty details, exactly as the notify packages call them.
//
// Protocol: one JSON request per line on stdin, one JSON response per line on stdout,
// strictly in turn. The process renders one request at a time; the notifier bounds each
// render's wall time from outside (it kills the process past its deadline: a goroutine
// cannot be interrupted), and the process bounds its own memory (-max-memory-mb, an
// address-space limit over what the runtime had reserved at start, plus a soft GC
// target) and stack, so a hostile template ends this process, never the notifier.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
	// The zone database, for `tz` where the system has none (a slim image); the
	// system's is used when present.
	_ "time/tzdata"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
)

type field struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"` // "text", "html" or "deep"
	Text  string `json:"text"`
	Value any    `json:"value"`
}

type alertIn struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

type dataIn struct {
	Receiver           string            `json:"receiver"`
	NotificationReason string            `json:"notificationReason"`
	GroupLabels        map[string]string `json:"groupLabels"`
	ExternalURL        string            `json:"externalURL"`
	Alerts             []alertIn         `json:"alerts"`
}

type request struct {
	Op        string   `json:"op"` // "load", "render", "drop"
	Set       string   `json:"set"`
	Patterns  []string `json:"patterns"`
	Data      dataIn   `json:"data"`
	Fields    []field  `json:"fields"`
	MaxOutput int      `json:"max_output"`
}

type response struct {
	OK     bool           `json:"ok"`
	Error  string         `json:"error,omitempty"`
	Field  string         `json:"field,omitempty"`
	Fields map[string]any `json:"fields,omitempty"`
}

// allFieldsFactor bounds one response: its fields together may be this many times
// max_output, so the reader on the other side knows the longest line it can get.
const allFieldsFactor = 4

type renderer struct {
	sets map[string]*template.Template
}

func (r *renderer) load(req *request) response {
	// FromGlobs is what Alertmanager runs on its configuration's `templates:` (paths made
	// absolute against the configuration file's directory by the caller, as Alertmanager
	// does); a glob matching nothing is allowed, as there.
	t, err := template.FromGlobs(req.Patterns)
	if err != nil {
		return response{Error: err.Error()}
	}
	r.sets[req.Set] = t
	return response{OK: true}
}

func labelSet(in map[string]string) model.LabelSet {
	out := make(model.LabelSet, len(in))
	for k, v := range in {
		out[model.LabelName(k)] = model.LabelValue(v)
	}
	return out
}

func (r *renderer) render(req *request) (resp response) {
	t, ok := r.sets[req.Set]
	if !ok {
		return response{Error: "unknown template set " + strconv.Quote(req.Set)}
	}
	external, err := url.Parse(req.Data.ExternalURL)
	if err != nil {
		return response{Error: "external URL: " + err.Error()}
	}
	// Template.Data reads the external URL from the template; renders are one at a time.
	t.ExternalURL = external

	now := time.Now()
	alerts := make([]*alert.Alert, 0, len(req.Data.Alerts))
	for _, a := range req.Data.Alerts {
		m := model.Alert{
			Labels:       labelSet(a.Labels),
			Annotations:  labelSet(a.Annotations),
			StartsAt:     a.StartsAt,
			EndsAt:       a.EndsAt,
			GeneratorURL: a.GeneratorURL,
		}
		// Alertmanager derives an alert's status from its end time and the clock; opsmesh
		// sends the status it decided, so the end time is made to say the same thing.
		if a.Status == string(model.AlertFiring) {
			m.EndsAt = time.Time{}
		} else if m.EndsAt.IsZero() || m.EndsAt.After(now) {
			m.EndsAt = now
		}
		alerts = append(alerts, alert.New(m, now, false))
	}
	data := t.Data(req.Data.Receiver, labelSet(req.Data.GroupLabels), nil, req.Data.NotificationReason, alerts...)
	template.MarkRouteLabelsRendered(data)

	out := make(map[string]any, len(req.Fields))
	total := 0
	for i := range req.Fields {
		f := &req.Fields[i]
		var value any
		var size int
		switch f.Kind {
		case "text", "html":
			var s string
			if f.Kind == "text" {
				s, err = t.ExecuteTextString(f.Text, data)
			} else {
				s, err = t.ExecuteHTMLString(f.Text, data)
			}
			value, size = s, len(s)
		case "deep":
			value, err = template.DeepCopyWithTemplate(f.Value, func(s string) (string, error) {
				rendered, err := t.ExecuteTextString(s, data)
				size += len(rendered)
				return rendered, err
			})
		default:
			err = fmt.Errorf("unknown field kind %q", f.Kind)
		}
		if err != nil {
			return response{Error: err.Error(), Field: f.Name}
		}
		if req.MaxOutput > 0 && size > req.MaxOutput {
			return response{
				Error: fmt.Sprintf("template budget exceeded: output of %d bytes, above %d", size, req.MaxOutput),
				Field: f.Name,
			}
		}
		total += size
		if req.MaxOutput > 0 && total > allFieldsFactor*req.MaxOutput {
			return response{
				Error: fmt.Sprintf("template budget exceeded: output of %d bytes in all, above %d", total, allFieldsFactor*req.MaxOutput),
				Field: f.Name,
			}
		}
		out[f.Name] = value
	}
	return response{OK: true, Fields: out}
}

func (r *renderer) handle(req *request) (resp response) {
	defer func() {
		// text/template turns a panicking function into an error; this is for anything else.
		if p := recover(); p != nil {
			resp = response{Error: fmt.Sprintf("renderer panic: %v", p)}
		}
	}()
	switch req.Op {
	case "load":
		return r.load(req)
	case "render":
		return r.render(req)
	case "drop":
		delete(r.sets, req.Set)
		return response{OK: true}
	case "ping":
		return response{OK: true}
	}
	return response{Error: "unknown op " + strconv.Quote(req.Op)}
}

// reservedBytes is the address space the runtime holds now (VmSize), so the limit set
// below bounds what rendering adds, whatever the runtime reserved at start.
func reservedBytes() (uint64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmSize in /proc/self/status")
}

const heapArena = 64 << 20

func limitMemory(maxMB int) error {
	if maxMB <= 0 {
		return nil
	}
	budget := uint64(maxMB) << 20
	debug.SetMemoryLimit(int64(budget / 2))
	debug.SetMaxStack(int(min(budget/4, 256<<20)))
	reserved, err := reservedBytes()
	if err != nil {
		return err
	}
	// The runtime reserves heap address space a 64 MiB arena at a time: one arena of
	// headroom, so a small budget is not spent by the reservation of the first new one.
	limit := reserved + budget + heapArena
	return syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit})
}

func main() {
	maxMemoryMB := flag.Int("max-memory-mb", 512, "address space a render may add (0: no limit)")
	maxRequest := flag.Int("max-request-bytes", 64<<20, "largest request line")
	flag.Parse()
	if err := limitMemory(*maxMemoryMB); err != nil {
		fmt.Fprintln(os.Stderr, "opsmesh-amtemplate: cannot limit memory:", err)
		os.Exit(1)
	}

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<20), *maxRequest)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	r := &renderer{sets: map[string]*template.Template{}}
	for in.Scan() {
		var req request
		var resp response
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			resp = response{Error: "bad request: " + err.Error()}
		} else {
			resp = r.handle(&req)
		}
		if err := enc.Encode(resp); err != nil {
			// A value DeepCopyWithTemplate produced that JSON cannot hold.
			_ = enc.Encode(response{Error: "cannot encode the result: " + err.Error()})
		}
		if err := out.Flush(); err != nil {
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "opsmesh-amtemplate:", err)
		os.Exit(1)
	}
}
