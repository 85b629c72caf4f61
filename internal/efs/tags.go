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

// updateTags changes the tags of a file system or an access point.
func (s *Service) updateTags(ctx context.Context, p Principal, resourceID string, fn func([]Tag) ([]Tag, error)) error {
	if !strings.HasPrefix(ParseResourceID(resourceID).ID, "fsap-") {
		_, err := s.update(ctx, p, resourceID, func(fs *FileSystem) error {
			tags, err := fn(fs.Tags)
			fs.Tags = tags
			return err
		})
		return err
	}
	return s.store.Update(ctx, func(tx Tx) error {
		ap, err := loadAP(tx, p, resourceID)
		if err != nil {
			return err
		}
		if ap.Tags, err = fn(ap.Tags); err != nil {
			return err
		}
		return tx.UpdateAccessPoint(ap)
	})
}

// resourceTags reads the tags of a file system or an access point.
func (s *Service) resourceTags(ctx context.Context, p Principal, resourceID string) ([]Tag, error) {
	if !strings.HasPrefix(ParseResourceID(resourceID).ID, "fsap-") {
		fs, err := s.view(ctx, p, resourceID)
		if err != nil {
			return nil, err
		}
		return fs.Tags, nil
	}
	var tags []Tag
	err := s.store.View(ctx, func(tx Tx) error {
		ap, err := loadAP(tx, p, resourceID)
		if err == nil {
			tags = ap.Tags
		}
		return err
	})
	return tags, err
}

// TagResource adds or overwrites tags on a file system or access point.
func (s *Service) TagResource(ctx context.Context, p Principal, resourceID string, tags []Tag) error {
	return s.updateTags(ctx, p, resourceID, func(old []Tag) ([]Tag, error) { return mergeTags(old, tags) })
}

// UntagResource removes tags by key; keys the resource lacks are ignored.
func (s *Service) UntagResource(ctx context.Context, p Principal, resourceID string, keys []string) error {
	return s.updateTags(ctx, p, resourceID, func(old []Tag) ([]Tag, error) { return removeTags(old, keys), nil })
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
	tags, err := s.resourceTags(ctx, p, resourceID)
	if err != nil {
		return nil, err
	}
	page := &TagPage{Tags: []Tag{}}
	if start < len(tags) {
		end := min(start+max, len(tags))
		page.Tags = append(page.Tags, tags[start:end]...)
		if end < len(tags) {
			page.Next = base64.RawURLEncoding.EncodeToString([]byte("tags:" + strconv.Itoa(end)))
		}
	}
	return page, nil
}
