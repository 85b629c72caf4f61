// Package wire is the EFS REST-JSON wire layer: one Go struct per structure
// shape of the elasticfilesystem 2015-02-01 model, model-driven validation
// that reports violations in AWS's own message format, per-operation request
// decoders, and the operation and error tables the HTTP server routes with.
//
// Everything model-derived lives in zz_generated.go, produced by
// tools/modelgen from the botocore copy of the model, so the wire format
// tracks what boto3, the AWS CLI and aws-sdk-go-v2 send and expect. The
// hand-written files hold the runtime those generated functions call.
package wire

//go:generate go run ../../../tools/modelgen -model service-2.json.gz -out zz_generated.go
