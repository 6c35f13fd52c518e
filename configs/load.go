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
	"time"

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
			return &ParseError{Path: path, Err: err}
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
		durationHook,
		mapstructure.StringToSliceHookFunc(","),
	)))
	if err != nil {
		// One line per key that failed to decode, naming the key, its
		// value and the file it came from.
		var keyErrs []error
		for _, de := range decodeErrors(err) {
			ke := &KeyError{Key: de.Name(), Err: de.Unwrap()}
			if path != "" && v.InConfig(ke.Key) {
				ke.Path = path
			}
			keyErrs = append(keyErrs, ke)
		}
		if len(keyErrs) == 0 {
			keyErrs = append(keyErrs, fmt.Errorf("config: %v", oneLine(err)))
		}
		errs = append(errs, keyErrs...)
	}
	return errors.Join(errs...)
}

// ParseError is Load's error for a file that is not valid YAML: nothing
// else is checked then, as the file's keys are unknown.
type ParseError struct {
	Path string
	Err  error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("config %s does not parse: %s", e.Path, strings.TrimPrefix(oneLine(e.Err), "While parsing config: "))
}

func (e *ParseError) Unwrap() error { return e.Err }

// KeyError is Load's error for a key whose value does not decode into its
// type (a duration that is not one, a word for a number).
type KeyError struct {
	// Path is the file the value came from; empty when it came from the
	// environment or an override.
	Path string
	// Key is the full dotted name of the key.
	Key string
	Err error
}

func (e *KeyError) Error() string {
	msg := oneLine(e.Err)
	if e.Path != "" {
		return fmt.Sprintf("config %s: %s: %s", e.Path, e.Key, msg)
	}
	return fmt.Sprintf("config: %s: %s", e.Key, msg)
}

func (e *KeyError) Unwrap() error { return e.Err }

// FailedKeys lists the keys of the KeyErrors in err (one error, or
// several joined): the keys whose values did not decode, so their zero
// values need no other complaint.
func FailedKeys(err error) []string {
	var keys []string
	var visit func(error)
	visit = func(err error) {
		if ke, ok := err.(*KeyError); ok {
			keys = append(keys, ke.Key)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				visit(e)
			}
		}
	}
	visit(err)
	return keys
}

// decodeErrors returns the per-key errors mapstructure joined into err.
func decodeErrors(err error) []*mapstructure.DecodeError {
	var out []*mapstructure.DecodeError
	var visit func(error)
	visit = func(err error) {
		if de, ok := err.(*mapstructure.DecodeError); ok {
			out = append(out, de)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				visit(e)
			}
		case interface{ Unwrap() error }:
			if e := u.Unwrap(); e != nil {
				visit(e)
			}
		}
	}
	visit(err)
	return out
}

// durationHook decodes a string into a time.Duration, saying what a
// duration looks like when it is not one.
func durationHook(f, t reflect.Type, data any) (any, error) {
	if f.Kind() != reflect.String || t != reflect.TypeOf(time.Duration(0)) {
		return data, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(data.(string)))
	if err != nil {
		return nil, fmt.Errorf("%q is not a duration (write it as 90s, 5m or 1h30m)", data)
	}
	return d, nil
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

// keyName is the config key of struct field f: its mapstructure tag, else
// its name in lower case; false for a field that is no key (unexported,
// or tagged "-").
func keyName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	name := f.Tag.Get("mapstructure")
	switch name {
	case "-":
		return "", false
	case "":
		return strings.ToLower(f.Name), true
	}
	return name, true
}

// walk calls fn for every leaf key of struct type t; nested structs are
// sections. Slices and maps are leaves.
func walk(prefix string, t reflect.Type, fn func(key string, t reflect.Type)) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := keyName(f)
		if !ok {
			continue
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
		name, ok := keyName(f)
		if !ok {
			continue
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
