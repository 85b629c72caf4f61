package efs

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
)

// mergeTags applies add onto tags: new keys are appended, existing keys get
// the new value. A resource carries at most MaxTags tags; keys with the
// reserved aws: prefix are refused (the model's pattern already refuses
// them on the wire, this keeps the rule for every caller).
func mergeTags(tags, add []Tag) ([]Tag, error) {
	out := append([]Tag{}, tags...)
	for _, t := range add {
		if len(t.Key) >= 4 && strings.EqualFold(t.Key[:4], "aws:") {
			return nil, E(BadRequest, "Tag key '%s' uses the reserved 'aws:' prefix.", t.Key)
		}
		replaced := false
		for i := range out {
			if out[i].Key == t.Key {
				out[i].Value, replaced = t.Value, true
				break
			}
		}
		if !replaced {
			out = append(out, t)
		}
	}
	if len(out) > MaxTags {
		return nil, E(BadRequest, "A resource can have at most %d tags; this request would leave %d.", MaxTags, len(out))
	}
	return out, nil
}

func removeTags(tags []Tag, keys []string) []Tag {
	out := make([]Tag, 0, len(tags))
	for _, t := range tags {
		drop := false
		for _, k := range keys {
			if t.Key == k {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, t)
		}
	}
	return out
}

// checkTaggable refuses resource IDs of kinds efsd does not hold yet.
func checkTaggable(id string) error {
	ref := ParseResourceID(id)
	if strings.HasPrefix(ref.ID, "fsap-") {
		return E(AccessPointNotFound, "Access point '%s' does not exist.", ref.ID)
	}
	return nil
}

// TagResource adds or overwrites tags on a resource.
func (s *Service) TagResource(ctx context.Context, p Principal, resourceID string, tags []Tag) error {
	if err := checkTaggable(resourceID); err != nil {
		return err
	}
	_, err := s.update(ctx, p, resourceID, func(fs *FileSystem) error {
		merged, err := mergeTags(fs.Tags, tags)
		fs.Tags = merged
		return err
	})
	return err
}

// UntagResource removes tags by key; keys the resource lacks are ignored.
func (s *Service) UntagResource(ctx context.Context, p Principal, resourceID string, keys []string) error {
	if err := checkTaggable(resourceID); err != nil {
		return err
	}
	_, err := s.update(ctx, p, resourceID, func(fs *FileSystem) error {
		fs.Tags = removeTags(fs.Tags, keys)
		return nil
	})
	return err
}

// TagPage is one page of a resource's tags.
type TagPage struct {
	Tags []Tag
	Next string // empty on the last page
}

// ListTags returns a page of a resource's tags. token is the opaque value
// of a previous page's Next; both tag APIs (ListTagsForResource and the
// legacy DescribeTags) page through the same tag set with it.
func (s *Service) ListTags(ctx context.Context, p Principal, resourceID, token string, max int) (*TagPage, error) {
	if err := checkTaggable(resourceID); err != nil {
		return nil, err
	}
	start := 0
	if token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "tags:"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(b), "tags:") || n < 0 {
			return nil, E(BadRequest, "The pagination token '%s' is not valid.", token)
		}
		start = n
	}
	if max <= 0 {
		max = DefaultPageSize
	}
	fs, err := s.view(ctx, p, resourceID)
	if err != nil {
		return nil, err
	}
	page := &TagPage{Tags: []Tag{}}
	if start < len(fs.Tags) {
		end := min(start+max, len(fs.Tags))
		page.Tags = append(page.Tags, fs.Tags[start:end]...)
		if end < len(fs.Tags) {
			page.Next = base64.RawURLEncoding.EncodeToString([]byte("tags:" + strconv.Itoa(end)))
		}
	}
	return page, nil
}
