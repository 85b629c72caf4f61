package wire

import "strings"

// Operation is one EFS API operation as the model routes it.
type Operation struct {
	Name          string
	Method        string
	URI           string // model requestUri, e.g. "/2015-02-01/file-systems/{FileSystemId}"
	SuccessStatus int    // HTTP status of a successful response
	Input         string // input shape name
	Output        string // output shape name; "" when the operation returns no body
	Errors        []string
	Deprecated    bool
}

// Patterns returns the net/http.ServeMux pattern(s) for the operation. A
// ServeMux pattern ending in "/" would match a whole subtree, so a URI with a
// trailing slash (DescribeTags) is registered exactly, with "{$}", and also
// without the slash, which some clients send.
func (o Operation) Patterns() []string {
	if o.URI == "/" {
		return []string{o.Method + " /{$}"}
	}
	if trimmed, ok := strings.CutSuffix(o.URI, "/"); ok {
		return []string{o.Method + " " + o.URI + "{$}", o.Method + " " + trimmed}
	}
	return []string{o.Method + " " + o.URI}
}

// OperationByName finds an operation in Operations.
func OperationByName(name string) (Operation, bool) {
	for _, o := range Operations {
		if o.Name == name {
			return o, true
		}
	}
	return Operation{}, false
}

// ErrorShape is a modeled error: its code (the shape name), HTTP status, and
// the members it carries besides ErrorCode and Message.
type ErrorShape struct {
	Code    string
	Status  int
	Members []string
}

// LookupError finds a modeled error by code. The returned Members slice is
// shared with the table and must not be modified.
func LookupError(code string) (ErrorShape, bool) {
	e, ok := errorsByCode[code]
	return e, ok
}
