// robfig.go -- the reference side of the cron differential test: prints the
// fire times robfig/cron v3's standard parser gives (cron.ParseStandard, then
// Schedule.Next from the previous scheduled time), with the exceptions the
// API documents applied, so its output must equal Distribuerad's line for
// line. Built only by tests/crondiff/run.py, offline, against Debian's
// golang-github-robfig-cron-dev (GOPATH=/usr/share/gocode, GO111MODULE=off).
//
// Input, one case a line, fields separated by 0x1f:
//
//	start_ns count definition [definition_for_robfig]
//
// The fourth field, when present, is what robfig is given instead (day of
// week 7, which only Distribuerad accepts, written as 0). Output, one line
// per case: "E" if the definition is rejected, else up to count fire times
// in Unix nanoseconds, and "-" if robfig finds no further time.
//
// Exceptions applied here, as the API documents them:
//   - a fire time in the second pass through a fall-back hour (a wall time
//     that already occurred) is dropped, and the search goes on from it;
//   - a fire time not after the time asked from (robfig gives one inside
//     some fall-back changes) is dropped, and the search goes on from the
//     next whole minute;
//   - "@every" longer than 100 years is rejected.
//
// The server's zone is time.Local, so the caller sets TZ. With
// "-transitions from to" it prints instead the instants (Unix seconds) in
// [from, to) at which time.Local's offset changes.
package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron"
)

const maxEvery = 876000 * time.Hour // 100 years

var maxTime = time.Unix(0, math.MaxInt64)

const passMax = 24*60 + 1 // answers passed over before giving up, as cron.c

// secondPass reports whether t's wall time in loc already occurred at an
// earlier instant: t lies within the first (before-after) of a change that
// set the offset back.
func secondPass(t time.Time, loc *time.Location) bool {
	t = t.In(loc)
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, before := start.Add(-time.Second).Zone()
	_, off := t.Zone()
	return before > off && t.Sub(start) < time.Duration(before-off)*time.Second
}

func parse(def string) (s cron.Schedule, err error) {
	defer func() { // robfig panics on "TZ=Zone" without a space
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	s, err = cron.ParseStandard(def)
	if err == nil {
		if every, ok := s.(cron.ConstantDelaySchedule); ok && every.Delay > maxEvery {
			return nil, fmt.Errorf("@every longer than 100 years")
		}
	}
	return s, err
}

func fires(s cron.Schedule, start time.Time, count int) string {
	var b strings.Builder
	loc := time.Local
	if spec, ok := s.(*cron.SpecSchedule); ok {
		loc = spec.Location
		if loc == time.Local {
			loc = start.Location()
		}
	}
	_, every := s.(cron.ConstantDelaySchedule)
	q, n, passed := start, 0, 0
	for n < count && passed < passMax {
		t := s.Next(q)
		if t.IsZero() || t.After(maxTime) { // Distribuerad's times end in 2262
			b.WriteString(" -")
			return strings.TrimPrefix(b.String(), " ")
		}
		switch {
		case !t.After(q): // before the time asked from: go on from the next minute
			q = time.Unix((q.Unix()+1)/60*60+59, 0)
			passed++
		case !every && secondPass(t, loc):
			q = t
			passed++
		default:
			fmt.Fprintf(&b, " %d", t.UnixNano())
			q, n, passed = t, n+1, 0
		}
	}
	if passed == passMax {
		b.WriteString(" -")
	}
	return strings.TrimPrefix(b.String(), " ")
}

func transitions(from, to int64) {
	t := time.Unix(from, 0)
	for t.Unix() < to {
		_, end := t.ZoneBounds()
		if end.IsZero() {
			return
		}
		_, a := end.Add(-time.Second).Zone()
		_, b := end.Zone()
		if a != b && end.Unix() < to {
			fmt.Println(end.Unix())
		}
		t = end
	}
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "-transitions" {
		from, _ := strconv.ParseInt(os.Args[2], 10, 64)
		to, _ := strconv.ParseInt(os.Args[3], 10, 64)
		transitions(from, to)
		return
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		f := strings.Split(in.Text(), "\x1f")
		if len(f) < 3 {
			fmt.Fprintln(os.Stderr, "robfig: bad input line:", in.Text())
			os.Exit(2)
		}
		startNs, _ := strconv.ParseInt(f[0], 10, 64)
		count, _ := strconv.Atoi(f[1])
		def := f[2]
		if len(f) > 3 {
			def = f[3]
		}
		s, err := parse(def)
		if err != nil {
			fmt.Fprintln(out, "E")
			continue
		}
		fmt.Fprintln(out, fires(s, time.Unix(0, startNs), count))
	}
}
