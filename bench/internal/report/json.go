package report

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
)

// JSON marshals v like encoding/json, indented, except that NaN and ±Inf
// (a measurement that could not be taken, or a change never seen) become
// null instead of failing the whole file.
func JSON(v any) ([]byte, error) {
	return json.MarshalIndent(clean(reflect.ValueOf(v)), "", "  ")
}

func clean(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Invalid:
		return nil
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return clean(v.Elem())
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		return f
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = clean(v.Index(i))
		}
		return out
	case reflect.Map:
		out := make(map[string]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			k, _ := json.Marshal(it.Key().Interface())
			out[strings.Trim(string(k), `"`)] = clean(it.Value())
		}
		return out
	case reflect.Struct:
		if _, ok := v.Interface().(json.Marshaler); ok {
			return v.Interface()
		}
		out := map[string]any{}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fv := v.Field(i)
			if strings.Contains(opts, "omitempty") && fv.IsZero() {
				continue
			}
			out[name] = clean(fv)
		}
		return out
	default:
		return v.Interface()
	}
}
