package seedfile

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/totpbox/totpbox/enroll"
)

// csvColumns are the columns of the OATH CSV that Entra ID imports, in the
// order its template gives them: upn,serial number,secret key,time
// interval,manufacturer,model. The header names them; their order may vary.
var csvColumns = []string{"upn", "serial number", "secret key", "time interval", "manufacturer", "model"}

// ReadOATHCSV reads Entra ID's hardware OATH token CSV: a header line, then
// one TOTP token a line with a base32 secret. The upn column, where
// filled, assigns the token to that user. All or nothing: the first bad
// line is returned alone as "line N: …".
func ReadOATHCSV(r io.Reader) ([]Token, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("the CSV file is empty")
	}
	if err != nil {
		return nil, fmt.Errorf("line 1: %v", csvErr(err))
	}
	col := make(map[string]int, len(header))
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	for _, c := range csvColumns[1:4] {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("line 1: the header has no %q column (want %s)", c, strings.Join(csvColumns, ","))
		}
	}
	get := func(rec []string, name string) string {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	var tokens []Token
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", line, csvErr(err))
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		t := Token{
			Owner:        get(rec, "upn"),
			Serial:       get(rec, "serial number"),
			Manufacturer: get(rec, "manufacturer"),
			Model:        get(rec, "model"),
			Kind:         TOTP,
		}
		if t.Serial == "" {
			return nil, fmt.Errorf("line %d: serial number is empty", line)
		}
		secret, err := enroll.ParseSecret(get(rec, "secret key"))
		if err != nil {
			return nil, fmt.Errorf("line %d (serial %s): secret key: %v", line, t.Serial, err)
		}
		period := 30
		if s := get(rec, "time interval"); s != "" {
			if period, err = strconv.Atoi(s); err != nil {
				return nil, fmt.Errorf("line %d (serial %s): time interval %q is not a number of seconds", line, t.Serial, s)
			}
		}
		t.Key = enroll.Key{Issuer: t.Manufacturer, Account: t.Serial, Secret: secret, Algorithm: enroll.SHA1,
			Digits: enroll.DefaultDigits, Period: time.Duration(period) * time.Second}
		if err := t.validate(); err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		if first, dup := seen[t.Serial]; dup {
			return nil, fmt.Errorf("line %d: serial number %s appears again (first on line %d)", line, t.Serial, first)
		}
		seen[t.Serial] = line
		tokens = append(tokens, t)
	}
	if len(tokens) == 0 {
		return nil, errors.New("the CSV file holds no tokens")
	}
	return tokens, nil
}

// csvErr strips encoding/csv's own position prefix, which names a line
// and column the caller already reports.
func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
