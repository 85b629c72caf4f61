# An EFS deployment made with the hashicorp/aws provider against efsd: a file
# system with a mount target in a subnet found by a data source lookup, an
# access point, a resource policy, a backup policy, and replication both to a
# new file system in another region and to an existing one. See README.md.

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

variable "endpoint" {
  description = "efsd's API endpoint (EFS and EC2 on one URL)."
  type        = string
  default     = "http://127.0.0.1:8049"
}

provider "aws" {
  region     = "us-east-1"
  access_key = "test"
  secret_key = "test"

  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true

  endpoints {
    efs = var.endpoint
    ec2 = var.endpoint
    sts = var.endpoint
  }
}

data "aws_vpc" "default" {
  default = true
}

data "aws_subnet" "a" {
  vpc_id            = data.aws_vpc.default.id
  availability_zone = "us-east-1a"
  default_for_az    = true
}

resource "aws_security_group" "nfs" {
  name        = "efs-nfs"
  description = "NFS clients of the example file system"
  vpc_id      = data.aws_vpc.default.id

  ingress {
    from_port   = 2049
    to_port     = 2049
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/8"]
  }
}

resource "aws_efs_file_system" "app" {
  creation_token = "example-app"
  encrypted      = true

  tags = {
    Name = "example-app"
  }
}

resource "aws_efs_mount_target" "app_a" {
  file_system_id  = aws_efs_file_system.app.id
  subnet_id       = data.aws_subnet.a.id
  security_groups = [aws_security_group.nfs.id]
}

resource "aws_efs_access_point" "app" {
  file_system_id = aws_efs_file_system.app.id

  posix_user {
    uid = 1000
    gid = 1000
  }

  root_directory {
    path = "/app"
    creation_info {
      owner_uid   = 1000
      owner_gid   = 1000
      permissions = "0755"
    }
  }
}

resource "aws_efs_file_system_policy" "app" {
  file_system_id = aws_efs_file_system.app.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "MountThroughMountTargets"
      Effect    = "Allow"
      Principal = { AWS = "*" }
      Action    = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
      Resource  = aws_efs_file_system.app.arn
      Condition = { Bool = { "elasticfilesystem:AccessedViaMountTarget" = "true" } }
    }]
  })
}

resource "aws_efs_backup_policy" "app" {
  file_system_id = aws_efs_file_system.app.id

  backup_policy {
    status = "ENABLED"
  }
}

# Replication to a new file system that efsd creates in another region.
resource "aws_efs_replication_configuration" "app_dr" {
  source_file_system_id = aws_efs_file_system.app.id

  destination {
    region = "eu-west-1"
  }
}

# Replication into a file system that already exists: its replication
# overwrite protection must be DISABLED first. Replication then sets it to
# REPLICATING, which is not a change to undo.
resource "aws_efs_file_system" "shared" {
  creation_token = "example-shared"

  tags = {
    Name = "example-shared"
  }
}

resource "aws_efs_file_system" "shared_copy" {
  creation_token = "example-shared-copy"

  protection {
    replication_overwrite = "DISABLED"
  }

  tags = {
    Name = "example-shared-copy"
  }

  lifecycle {
    ignore_changes = [protection]
  }
}

resource "aws_efs_replication_configuration" "shared" {
  source_file_system_id = aws_efs_file_system.shared.id

  destination {
    file_system_id = aws_efs_file_system.shared_copy.id
    region         = "us-east-1"
  }
}
