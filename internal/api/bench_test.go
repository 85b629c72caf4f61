package api_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"

	"github.com/efsd/efsd/internal/efstest"
)

// BenchmarkDescribeFileSystem measures a signed DescribeFileSystems by ID
// through the SDK, client and server in one process (profile with
// -cpuprofile to see the server's share).
func BenchmarkDescribeFileSystem(b *testing.B) {
	srv := efstest.Start(b)
	c := srv.Client(efstest.AccountA, region)
	out, err := c.CreateFileSystem(context.Background(), &efs.CreateFileSystemInput{CreationToken: aws.String("bench")})
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{FileSystemId: out.FileSystemId}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCreateFileSystem measures signed, durable creates.
func BenchmarkCreateFileSystem(b *testing.B) {
	srv := efstest.Start(b, efstest.WithConfig(func(c *daemonConfig) { c.FileSystemQuota = 1 << 30 }))
	c := srv.Client(efstest.AccountA, region)
	var n atomicCounter
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tok := "c" + strconv.FormatInt(n.next(), 10)
			if _, err := c.CreateFileSystem(context.Background(), &efs.CreateFileSystemInput{CreationToken: aws.String(tok)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
