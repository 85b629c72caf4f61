package api_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/efstest"
)

func tag(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[*t.Key] = *t.Value
	}
	return m
}

func TestTags(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	fs := createFS(t, c, "tags")
	id := fs.FileSystemId

	if _, err := c.TagResource(ctx, &efs.TagResourceInput{ResourceId: fs.FileSystemArn,
		Tags: []types.Tag{tag("Name", "first"), tag("env", "prod"), tag("ünïcode", "välue ok")}}); err != nil {
		t.Fatal(err)
	}
	// The legacy API sees and changes the same tag set.
	if _, err := c.CreateTags(ctx, &efs.CreateTagsInput{FileSystemId: id, Tags: []types.Tag{tag("env", "dev"), tag("legacy", "yes")}}); err != nil {
		t.Fatal(err)
	}
	dt, err := c.DescribeTags(ctx, &efs.DescribeTagsInput{FileSystemId: id})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Name": "first", "env": "dev", "ünïcode": "välue ok", "legacy": "yes"}
	if got := tagMap(dt.Tags); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("DescribeTags = %v, want %v", got, want)
	}
	if got := describe(t, c, *id); aws.ToString(got.Name) != "first" || len(got.Tags) != 4 {
		t.Fatalf("described name/tags: %v %v", aws.ToString(got.Name), got.Tags)
	}
	if _, err := c.UntagResource(ctx, &efs.UntagResourceInput{ResourceId: id, TagKeys: []string{"Name", "absent"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteTags(ctx, &efs.DeleteTagsInput{FileSystemId: id, TagKeys: []string{"legacy"}}); err != nil {
		t.Fatal(err)
	}
	lt, err := c.ListTagsForResource(ctx, &efs.ListTagsForResourceInput{ResourceId: id})
	if err != nil {
		t.Fatal(err)
	}
	if got := tagMap(lt.Tags); len(got) != 2 || got["env"] != "dev" {
		t.Fatalf("ListTagsForResource = %v", got)
	}
	if got := describe(t, c, *id); got.Name != nil {
		t.Fatalf("Name still %q after its tag was removed", *got.Name)
	}

	// Reserved prefix and the 50-tag limit.
	_, err = c.TagResource(ctx, &efs.TagResourceInput{ResourceId: id, Tags: []types.Tag{tag("aws:owner", "x")}})
	wantAPIError(t, err, "ValidationException")
	var many []types.Tag
	for i := range 49 {
		many = append(many, tag(fmt.Sprintf("k%02d", i), "v"))
	}
	_, err = c.TagResource(ctx, &efs.TagResourceInput{ResourceId: id, Tags: many})
	wantAPIError(t, err, "BadRequest")
	if _, err := c.TagResource(ctx, &efs.TagResourceInput{ResourceId: id, Tags: many[:48]}); err != nil {
		t.Fatalf("50 tags must be allowed: %v", err)
	}

	// Both APIs page through the 50 tags.
	var listed, described int
	lp := efs.NewListTagsForResourcePaginator(c, &efs.ListTagsForResourceInput{ResourceId: id, MaxResults: aws.Int32(7)})
	for lp.HasMorePages() {
		page, err := lp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		listed += len(page.Tags)
	}
	dp := efs.NewDescribeTagsPaginator(c, &efs.DescribeTagsInput{FileSystemId: id, MaxItems: aws.Int32(20)})
	for dp.HasMorePages() {
		page, err := dp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		described += len(page.Tags)
	}
	if listed != 50 || described != 50 {
		t.Fatalf("paged %d and %d tags, want 50", listed, described)
	}

	_, err = c.ListTagsForResource(ctx, &efs.ListTagsForResourceInput{ResourceId: aws.String("fsap-0123456789abcdef0")})
	wantAPIError(t, err, "AccessPointNotFound")
	_, err = c.DescribeTags(ctx, &efs.DescribeTagsInput{FileSystemId: aws.String("fs-0123456789abcdef0")})
	wantAPIError(t, err, "FileSystemNotFound")
}
