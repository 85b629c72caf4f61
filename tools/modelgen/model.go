package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
)

// model is the subset of a botocore service-2.json that the generator reads.
// Documentation fields are deliberately not decoded.
type model struct {
	Metadata struct {
		APIVersion string `json:"apiVersion"`
		UID        string `json:"uid"`
		Protocol   string `json:"protocol"`
	} `json:"metadata"`
	Operations ordered[*operation] `json:"operations"`
	Shapes     map[string]*shape   `json:"shapes"`
}

type operation struct {
	Name string `json:"name"`
	HTTP struct {
		Method       string `json:"method"`
		RequestURI   string `json:"requestUri"`
		ResponseCode int    `json:"responseCode"`
	} `json:"http"`
	Input      *ref  `json:"input"`
	Output     *ref  `json:"output"`
	Errors     []ref `json:"errors"`
	Deprecated bool  `json:"deprecated"`
}

// ref points at a shape; as a structure member it may carry a location.
type ref struct {
	Shape        string `json:"shape"`
	Location     string `json:"location"` // "", "uri", "querystring", "header"
	LocationName string `json:"locationName"`
}

type shape struct {
	Type     string        `json:"type"`
	Members  ordered[*ref] `json:"members"`
	Required []string      `json:"required"`
	Member   *ref          `json:"member"`
	Key      *ref          `json:"key"`
	Value    *ref          `json:"value"`
	Enum     []string      `json:"enum"`
	Pattern  string        `json:"pattern"`
	// Min and Max keep the model's spelling ("1.0" vs "1") for messages.
	Min       *json.Number `json:"min"`
	Max       *json.Number `json:"max"`
	Exception bool         `json:"exception"`
	Error     *struct {
		Code           string `json:"code"`
		HTTPStatusCode int    `json:"httpStatusCode"`
	} `json:"error"`
}

// ordered is a JSON object that remembers its key order, so operations and
// members come out in model order rather than Go's map order.
type ordered[T any] struct {
	Keys   []string
	Values map[string]T
}

func (o *ordered[T]) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("expected a JSON object, got %v: %w", tok, err)
	}
	o.Values = map[string]T{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("read key: %w", err)
		}
		key := tok.(string) // object keys are always strings
		var v T
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("decode %q: %w", key, err)
		}
		o.Keys = append(o.Keys, key)
		o.Values[key] = v
	}
	_, err := dec.Token()
	return err
}

// isRequired reports whether the structure lists member as required.
func (s *shape) isRequired(member string) bool {
	return slices.Contains(s.Required, member)
}

func (s *shape) isError() bool { return s.Exception || s.Error != nil }

// loadModel reads a service-2.json, gzip-compressed or not.
func loadModel(path string) (*model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open model: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("open gzip model: %w", err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("decompress model: %w", err)
		}
	}
	var m model
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse model %s: %w", path, err)
	}
	if m.Metadata.Protocol != "rest-json" {
		return nil, fmt.Errorf("model protocol is %q, only rest-json is supported", m.Metadata.Protocol)
	}
	return &m, nil
}
