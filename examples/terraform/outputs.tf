output "file_system_id" {
  value = aws_efs_file_system.app.id
}

output "mount_target_id" {
  value = aws_efs_mount_target.app_a.id
}

output "mount_target_ip" {
  value = aws_efs_mount_target.app_a.ip_address
}

output "access_point_id" {
  value = aws_efs_access_point.app.id
}

output "replica_file_system_id" {
  value = aws_efs_replication_configuration.app_dr.destination[0].file_system_id
}

output "existing_destination_file_system_id" {
  value = aws_efs_file_system.shared_copy.id
}
