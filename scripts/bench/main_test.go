package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	keys := func(o options) string {
		var k []string
		for _, p := range o.paths {
			k = append(k, p.Key)
		}
		return strings.Join(k, ",")
	}
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.modes, []string{modeCanned}) || o.duration != 5*time.Second || o.rounds != 2 || !o.routes || keys(o) != strings.Join(pathKeys(), ",") {
		t.Errorf("defaults: %+v", o)
	}
	o, err = parseFlags([]string{"--smoke", "--backends", "both", "--duration", "9s", "--rounds", "4"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.modes, []string{modeDemo, modeCanned}) || o.duration != time.Second || o.rounds != 1 {
		t.Errorf("--smoke --backends both: %+v", o)
	}
	o, err = parseFlags([]string{"--routes=false"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if keys(o) != "order,dashboard,products,session,libfloor,libdash,libsession,floor" {
		t.Errorf("--routes=false: paths %s, want all but route", keys(o))
	}
	o, err = parseFlags([]string{"--paths", "floor, order,floor"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if keys(o) != "floor,order" {
		t.Errorf("--paths: %s, want floor,order", keys(o))
	}
	if !slices.Equal(o.telemetry, []string{telemetryOff}) {
		t.Errorf("--telemetry by default: %q, want off alone", o.telemetry)
	}
	for flag, want := range map[string][]string{
		"both":            {telemetryOff, telemetryOn},
		"all":             {telemetryOff, telemetryOn, telemetryNoLog},
		"on":              {telemetryOn},
		"nolog,off,nolog": {telemetryNoLog, telemetryOff},
	} {
		o, err := parseFlags([]string{"--telemetry", flag}, io.Discard)
		if err != nil || !slices.Equal(o.telemetry, want) {
			t.Errorf("--telemetry %s: %q, %v; want %q", flag, o.telemetry, err, want)
		}
	}
	for _, args := range [][]string{
		{"--telemetry", "yes"},
		{"--telemetry", ""},
		{"--backends", "real"},
		{"--duration", "1500ms"},
		{"--duration", "0s"},
		{"--rounds", "0"},
		{"--paths", "order,nope"},
		{"--routes=false", "--paths", "route"},
		{"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
}

func TestRoundOrder(t *testing.T) {
	v := []string{telemetryOff, telemetryOn, telemetryNoLog}
	for round, want := range map[int]string{1: "off,on,nolog", 2: "on,nolog,off", 3: "nolog,off,on", 4: "off,on,nolog"} {
		if got := strings.Join(roundOrder(v, round), ","); got != want {
			t.Errorf("round %d: %s, want %s", round, got, want)
		}
	}
	if got := strings.Join(v, ","); got != "off,on,nolog" {
		t.Errorf("roundOrder changed its argument: %s", got)
	}
	if got := roundOrder([]string{telemetryOff}, 5); !slices.Equal(got, []string{telemetryOff}) {
		t.Errorf("one variant: %q", got)
	}
}
