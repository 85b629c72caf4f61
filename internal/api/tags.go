package api

import (
	"github.com/efsd/efsd/internal/api/wire"
)

func (s *Server) tagResource(c *call) (any, error) {
	in, err := wire.DecodeTagResource(c.r, c.body)
	if err != nil {
		return nil, err
	}
	return nil, s.svc.TagResource(c.ctx, c.p, val(in.ResourceId), tagsIn(in.Tags))
}

func (s *Server) untagResource(c *call) (any, error) {
	in, err := wire.DecodeUntagResource(c.r, c.body)
	if err != nil {
		return nil, err
	}
	return nil, s.svc.UntagResource(c.ctx, c.p, val(in.ResourceId), in.TagKeys)
}

func (s *Server) listTagsForResource(c *call) (any, error) {
	in, err := wire.DecodeListTagsForResource(c.r, c.body)
	if err != nil {
		return nil, err
	}
	page, err := s.svc.ListTags(c.ctx, c.p, val(in.ResourceId), val(in.NextToken), int(val(in.MaxResults)))
	if err != nil {
		return nil, err
	}
	return &wire.ListTagsForResourceResponse{Tags: tagsOut(page.Tags), NextToken: optional(page.Next)}, nil
}

// The legacy tag operations (CreateTags, DeleteTags, DescribeTags) act on
// the same tag set as the current ones.

func (s *Server) createTags(c *call) (any, error) {
	in, err := wire.DecodeCreateTags(c.r, c.body)
	if err != nil {
		return nil, err
	}
	return nil, s.svc.TagResource(c.ctx, c.p, val(in.FileSystemId), tagsIn(in.Tags))
}

func (s *Server) deleteTags(c *call) (any, error) {
	in, err := wire.DecodeDeleteTags(c.r, c.body)
	if err != nil {
		return nil, err
	}
	return nil, s.svc.UntagResource(c.ctx, c.p, val(in.FileSystemId), in.TagKeys)
}

func (s *Server) describeTags(c *call) (any, error) {
	in, err := wire.DecodeDescribeTags(c.r, c.body)
	if err != nil {
		return nil, err
	}
	page, err := s.svc.ListTags(c.ctx, c.p, val(in.FileSystemId), val(in.Marker), int(val(in.MaxItems)))
	if err != nil {
		return nil, err
	}
	return &wire.DescribeTagsResponse{Marker: in.Marker, Tags: tagsOut(page.Tags), NextMarker: optional(page.Next)}, nil
}
