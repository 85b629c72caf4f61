package ec2api

import "encoding/xml"

type attributeBool struct {
	Value bool `xml:"value"`
}

type describeVpcAttributeResponse struct {
	XMLName xml.Name `xml:"DescribeVpcAttributeResponse"`
	header
	VpcID              string         `xml:"vpcId"`
	EnableDNSHostnames *attributeBool `xml:"enableDnsHostnames,omitempty"`
	EnableDNSSupport   *attributeBool `xml:"enableDnsSupport,omitempty"`
	EnableNAUMetrics   *attributeBool `xml:"enableNetworkAddressUsageMetrics,omitempty"`
}

// describeVpcAttribute answers as for EC2's default VPCs: DNS support and
// DNS host names on (mount targets have EC2-style private DNS names),
// network address usage metrics off.
func (h *Handler) describeVpcAttribute(c *call) (any, error) {
	id, attr := c.form.Get("VpcId"), c.form.Get("Attribute")
	if id == "" || attr == "" {
		return nil, errorf("MissingParameter", "The request must contain the parameters VpcId and Attribute.")
	}
	n, _, err := h.svc.NetworkInterfaces(c.ctx, c.p)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, v := range n.VPCs {
		known[v.ID] = true
	}
	if err := allKnown([]string{id}, known, "vpc-", "InvalidVpcID.Malformed", "InvalidVpcID.NotFound", "The vpc ID '%s' does not exist"); err != nil {
		return nil, err
	}
	resp := &describeVpcAttributeResponse{VpcID: id}
	switch attr {
	case "enableDnsHostnames":
		resp.EnableDNSHostnames = &attributeBool{true}
	case "enableDnsSupport":
		resp.EnableDNSSupport = &attributeBool{true}
	case "enableNetworkAddressUsageMetrics":
		resp.EnableNAUMetrics = &attributeBool{false}
	default:
		return nil, errorf("InvalidParameterValue", "Value (%s) for parameter attribute is invalid. Unknown attribute.", attr)
	}
	return resp, nil
}
