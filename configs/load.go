// Package configs holds totpbox's commented configuration files and loads
// configuration with viper: YAML files, environment variables with a prefix,
// and defaults taken from a Go struct, refusing unknown keys by name.
package configs

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// Load fills dst (a pointer to a struct with mapstructure tags, holding the
// defaults) from the YAML file at path, when path is non-empty, from
// environment variables named PREFIX_SECTION_KEY, and from overrides of
// the form "section.key=value" (command-line flags), which win over both.
// Every unknown key in the file or the overrides is reported at once, each
// by its full name.
func Load(path, envPrefix string, dst any, overrides ...string) error {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := setDefaults(v, "", reflect.ValueOf(dst).Elem()); err != nil {
		return err
	}
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		defer f.Close()
		if err := v.ReadConfig(f); err != nil {
			return fmt.Errorf("config %s: %v", path, oneLine(err))
		}
	}
	// Unknown keys are reported together with any value that fails to
	// decode; dst is still filled with everything that could be read.
	var errs []error
	known := map[string]bool{}
	for _, k := range Keys(dst) {
		known[k] = true
	}
	for _, o := range overrides {
		k, val, ok := strings.Cut(o, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("--set %q: want key=value", o))
		case !known[k]:
			errs = append(errs, fmt.Errorf("--set: unknown key %q", k))
		default:
			v.Set(k, val)
		}
	}
	if path != "" {
		for _, k := range unknownKeys(v, dst) {
			errs = append(errs, fmt.Errorf("config %s: unknown key %q", path, k))
		}
	}
	err := v.Unmarshal(dst, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	)))
	if err != nil {
		errs = append(errs, fmt.Errorf("config: %v", oneLine(err)))
	}
	return errors.Join(errs...)
}

// Keys lists every key dst's type knows, dotted, sorted.
func Keys(dst any) []string {
	var keys []string
	walk("", reflect.TypeOf(dst).Elem(), func(key string, _ reflect.Type) { keys = append(keys, key) })
	sort.Strings(keys)
	return keys
}

func unknownKeys(v *viper.Viper, dst any) []string {
	known := map[string]bool{}
	sections := map[string]bool{}
	walk("", reflect.TypeOf(dst).Elem(), func(key string, _ reflect.Type) {
		known[key] = true
		for i := strings.LastIndex(key, "."); i > 0; i = strings.LastIndex(key[:i], ".") {
			sections[key[:i]] = true
		}
	})
	var unknown []string
	for _, k := range v.AllKeys() {
		if !known[k] && !sections[k] && v.InConfig(k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	return unknown
}

// walk calls fn for every leaf key of struct type t; nested structs are
// sections. Slices and maps are leaves.
func walk(prefix string, t reflect.Type, fn func(key string, t reflect.Type)) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Tag.Get("mapstructure")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		key := prefix + name
		ft := f.Type
		if ft.Kind() == reflect.Struct && ft.String() != "time.Time" {
			walk(key+".", ft, fn)
			continue
		}
		fn(key, ft)
	}
}

func setDefaults(v *viper.Viper, prefix string, val reflect.Value) error {
	t := val.Type()
	if t.Kind() != reflect.Struct {
		return fmt.Errorf("config: %s is not a struct", t)
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Tag.Get("mapstructure")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fv := val.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type.String() != "time.Time" {
			if err := setDefaults(v, prefix+name+".", fv); err != nil {
				return err
			}
			continue
		}
		v.SetDefault(prefix+name, fv.Interface())
	}
	return nil
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
