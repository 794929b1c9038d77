// Command chart reads `go test -bench` output and writes an SVG line chart
// of ns/op against producer count, one line per implementation and one
// panel per benchmark (by default BenchmarkFireAndForget and
// BenchmarkCallSoon). With -count > 1 each point is the median of the runs.
//
// Usage:
//
//	go run ./chart [-o chart.svg] [-bench FireAndForget,CallSoon] [results.txt]
//
// With no file argument, or "-", it reads standard input. It uses the
// standard library only.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

func main() {
	out := flag.String("o", "chart.svg", "SVG file to write (\"-\" for standard output)")
	benches := flag.String("bench", "FireAndForget,CallSoon", "comma-separated benchmark names (without the Benchmark prefix), one panel each")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: chart [-o out.svg] [-bench A,B] [results.txt]\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	var in io.Reader = os.Stdin
	if name := flag.Arg(0); name != "" && name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fatal(err)
		}
		defer f.Close()
		in = f
	}
	samples, err := parse(in)
	if err != nil {
		fatal(err)
	}

	var panels []panel
	for _, name := range strings.Split(*benches, ",") {
		name = strings.TrimPrefix(strings.TrimSpace(name), "Benchmark")
		if name == "" {
			continue
		}
		p := buildPanel(name, samples)
		if len(p.series) == 0 {
			fmt.Fprintf(os.Stderr, "chart: no impl=…/producers=N results for Benchmark%s in the input: no panel\n", name)
			continue
		}
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		fatal(fmt.Errorf("nothing to chart: none of -bench %q in the input", *benches))
	}

	svg := render(panels)
	if *out == "-" {
		_, err = os.Stdout.WriteString(svg)
	} else {
		err = os.WriteFile(*out, []byte(svg), 0o644)
	}
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "chart:", err)
	os.Exit(1)
}

// key identifies one point: a benchmark, an implementation, a producer count.
type key struct {
	bench     string
	impl      string
	producers int
}

// lineRE matches a result line: name, iterations, then value-unit pairs.
var lineRE = regexp.MustCompile(`^Benchmark(\S+)\s+\d+\s+(.*)$`)

// procsRE is the -GOMAXPROCS suffix the testing package appends to names.
var procsRE = regexp.MustCompile(`-\d+$`)

// parse collects the ns/op values of every result line whose name has an
// impl= and a producers= part.
func parse(r io.Reader) (map[key][]float64, error) {
	samples := map[key][]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1024*1024), 1024*1024)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		parts := strings.Split(procsRE.ReplaceAllString(m[1], ""), "/")
		k := key{bench: parts[0], producers: -1}
		for _, part := range parts[1:] {
			name, value, ok := strings.Cut(part, "=")
			if !ok {
				continue
			}
			switch name {
			case "impl":
				k.impl = value
			case "producers":
				if n, err := strconv.Atoi(value); err == nil {
					k.producers = n
				}
			}
		}
		if k.impl == "" || k.producers < 0 {
			continue
		}
		fields := strings.Fields(m[2])
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i+1] != "ns/op" {
				continue
			}
			if v, err := strconv.ParseFloat(fields[i], 64); err == nil {
				samples[k] = append(samples[k], v)
			}
		}
	}
	return samples, sc.Err()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

type point struct {
	producers int
	ns        float64
	runs      int
}

type series struct {
	impl   string
	points []point // by producer count
}

type panel struct {
	bench     string
	series    []series
	producers []int // every producer count seen, ascending
}

// implOrder puts the library first and the alternatives after it in a
// stable order; unknown implementations follow alphabetically.
var implOrder = []string{"eventloop", "handrolled", "goja"}

func buildPanel(bench string, samples map[key][]float64) panel {
	p := panel{bench: bench}
	byImpl := map[string][]point{}
	seen := map[int]bool{}
	for k, v := range samples {
		if k.bench != bench || len(v) == 0 {
			continue
		}
		byImpl[k.impl] = append(byImpl[k.impl], point{k.producers, median(v), len(v)})
		if !seen[k.producers] {
			seen[k.producers] = true
			p.producers = append(p.producers, k.producers)
		}
	}
	sort.Ints(p.producers)
	impls := make([]string, 0, len(byImpl))
	for impl := range byImpl {
		impls = append(impls, impl)
	}
	rank := func(s string) int {
		if i := slices.Index(implOrder, s); i >= 0 {
			return i
		}
		return len(implOrder)
	}
	sort.Slice(impls, func(i, j int) bool {
		ri, rj := rank(impls[i]), rank(impls[j])
		if ri != rj {
			return ri < rj
		}
		return impls[i] < impls[j]
	})
	for _, impl := range impls {
		pts := byImpl[impl]
		sort.Slice(pts, func(i, j int) bool { return pts[i].producers < pts[j].producers })
		p.series = append(p.series, series{impl: impl, points: pts})
	}
	return p
}

var colors = []string{"#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f"}

// Layout, in SVG user units.
const (
	panelW  = 460.0
	panelH  = 340.0
	marginL = 70.0
	marginR = 20.0
	marginT = 40.0
	marginB = 55.0
	legendH = 28.0
	titleH  = 34.0
)

func render(panels []panel) string {
	width := panelW * float64(len(panels))
	height := titleH + panelH + legendH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.1f" y="22" text-anchor="middle" font-size="15" font-weight="bold">ns per task against producer goroutines (median of runs; lower is better)</text>`+"\n", width/2)

	// One legend for every panel, colours fixed per impl across panels.
	color := map[string]string{}
	var legend []string
	for _, p := range panels {
		for _, s := range p.series {
			if _, ok := color[s.impl]; !ok {
				color[s.impl] = colors[len(color)%len(colors)]
				legend = append(legend, s.impl)
			}
		}
	}

	for i, p := range panels {
		renderPanel(&b, p, float64(i)*panelW, titleH, color)
	}

	// Legend, centred below the panels.
	const itemW = 130.0
	x0 := width/2 - itemW*float64(len(legend))/2
	y := titleH + panelH + legendH/2
	for i, impl := range legend {
		x := x0 + itemW*float64(i)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2.5"/>`, x, y, x+24, y, color[impl])
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`, x+12, y, color[impl])
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`+"\n", x+30, y+1, html.EscapeString(impl))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func renderPanel(b *strings.Builder, p panel, ox, oy float64, color map[string]string) {
	plotX, plotY := ox+marginL, oy+marginT
	plotW, plotH := panelW-marginL-marginR, panelH-marginT-marginB

	maxY := 0.0
	for _, s := range p.series {
		for _, pt := range s.points {
			maxY = math.Max(maxY, pt.ns)
		}
	}
	step := niceStep(maxY / 5)
	top := math.Ceil(maxY*1.05/step) * step
	if top <= 0 {
		top, step = 1, 0.2
	}
	yOf := func(v float64) float64 { return plotY + plotH - v/top*plotH }

	// Producer counts are spaced on a log scale (1, 4, 16 evenly), or evenly
	// by rank if a count is not positive.
	lo, hi := 0.0, 1.0
	logScale := len(p.producers) > 0 && p.producers[0] > 0
	if logScale {
		lo, hi = math.Log2(float64(p.producers[0])), math.Log2(float64(p.producers[len(p.producers)-1]))
	}
	xOf := func(n int) float64 {
		pad := plotW * 0.08
		var t float64
		switch {
		case len(p.producers) < 2:
			t = 0.5
		case logScale:
			t = (math.Log2(float64(n)) - lo) / (hi - lo)
		default:
			t = float64(slices.Index(p.producers, n)) / float64(len(p.producers)-1)
		}
		return plotX + pad + t*(plotW-2*pad)
	}

	fmt.Fprintf(b, `<g>`+"\n")
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="14" font-weight="bold">Benchmark%s</text>`+"\n", plotX+plotW/2, oy+22, html.EscapeString(p.bench))

	// Grid and y axis ticks.
	for i := 0; float64(i)*step <= top+step/2; i++ {
		v := float64(i) * step
		y := yOf(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`, plotX, y, plotX+plotW, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", plotX-6, y, formatTick(v))
	}
	// Axes.
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`, plotX, plotY, plotX, plotY+plotH)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", plotX, plotY+plotH, plotX+plotW, plotY+plotH)
	for _, n := range p.producers {
		x := xOf(n)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`, x, plotY+plotH, x, plotY+plotH+5)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", x, plotY+plotH+18, n)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">producer goroutines</text>`+"\n", plotX+plotW/2, plotY+plotH+40)
	fmt.Fprintf(b, `<text transform="translate(%.1f %.1f) rotate(-90)" text-anchor="middle">ns/task</text>`+"\n", ox+18, plotY+plotH/2)

	// Lines and points.
	for _, s := range p.series {
		c := color[s.impl]
		var pts []string
		for _, pt := range s.points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(pt.producers), yOf(pt.ns)))
		}
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5"/>`+"\n", strings.Join(pts, " "), c)
		for _, pt := range s.points {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s, %d producers: %s ns/task (median of %d)</title></circle>`+"\n",
				xOf(pt.producers), yOf(pt.ns), c, html.EscapeString(s.impl), pt.producers, formatTick(pt.ns), pt.runs)
		}
	}
	fmt.Fprintf(b, "</g>\n")
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

func formatTick(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
