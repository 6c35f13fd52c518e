package configs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

type section struct {
	Name    string        `mapstructure:"name"`
	Timeout time.Duration `mapstructure:"timeout"`
	List    []string      `mapstructure:"list"`
}

type sample struct {
	Dir   string  `mapstructure:"dir"`
	Debug bool    `mapstructure:"debug"`
	Inner section `mapstructure:"inner"`
}

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		env     map[string]string
		want    sample
		wantErr []string
	}{
		{
			name: "defaults kept",
			body: "debug: true\n",
			want: sample{Dir: "/var/lib/x", Debug: true, Inner: section{Name: "n", Timeout: time.Second}},
		},
		{
			name: "nested and durations",
			body: "inner:\n  timeout: 2m\n  list: [a, b]\n",
			want: sample{Dir: "/var/lib/x", Inner: section{Name: "n", Timeout: 2 * time.Minute, List: []string{"a", "b"}}},
		},
		{
			name: "env overrides file",
			body: "dir: /from/file\n",
			env:  map[string]string{"TEST_DIR": "/from/env", "TEST_INNER_NAME": "envname"},
			want: sample{Dir: "/from/env", Inner: section{Name: "envname", Timeout: time.Second}},
		},
		{
			name:    "every unknown key named",
			body:    "dri: x\ninner:\n  nmae: y\n  timeout: 1s\n",
			wantErr: []string{`unknown key "dri"`, `unknown key "inner.nmae"`},
		},
		{
			name:    "bad duration",
			body:    "inner:\n  timeout: soon\n",
			wantErr: []string{"timeout"},
		},
		{
			name:    "bad yaml",
			body:    "inner: [\n",
			wantErr: []string{"config"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got := sample{Dir: "/var/lib/x", Inner: section{Name: "n", Timeout: time.Second}}
			err := Load(write(t, tt.body), "TEST", &got)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Load() = nil error, want %v", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Load() error = %v, want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Load() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	got := Keys(&sample{})
	want := []string{"debug", "dir", "inner.list", "inner.name", "inner.timeout"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Keys() = %v, want %v", got, want)
	}
}

func TestLoadOverrides(t *testing.T) {
	got := sample{Dir: "/var/lib/x", Inner: section{Name: "n", Timeout: time.Second}}
	err := Load(write(t, "dir: /from/file\n"), "TEST", &got, "dir=/from/flag", "inner.timeout=3s", "inner.list=a,b")
	if err != nil {
		t.Fatal(err)
	}
	want := sample{Dir: "/from/flag", Inner: section{Name: "n", Timeout: 3 * time.Second, List: []string{"a", "b"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load() with overrides = %+v, want %+v", got, want)
	}
	err = Load("", "TEST", &got, "nope=1", "dir")
	if err == nil || !strings.Contains(err.Error(), `unknown key "nope"`) || !strings.Contains(err.Error(), "want key=value") {
		t.Errorf("bad overrides: %v", err)
	}
}
