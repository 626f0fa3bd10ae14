#!/bin/bash
# A gallery worker's first boot (Amazon Linux 2023). scripts/aws/bootstrap fills in the
# @NAME@ values and puts this in the launch template. Secrets (database URL, the key shared
# by every worker for cookies and media URLs) are read from SSM Parameter Store with the
# instance role, never written into user data.
set -Eeuo pipefail
# A failed step is named in cloud-init's output (the instance's console and
# /var/log/cloud-init-output.log): `set -e` alone stops without a word.
trap 'status=$?; [ "$BASH_SUBSHELL" = 0 ] && echo "gallery user data: \`$BASH_COMMAND\` failed (exit status $status) at line $LINENO" >&2' ERR
BUCKET=@BUCKET@
REGION=@REGION@
DEPLOYMENT=@DEPLOYMENT@
NAMESPACE=@NAMESPACE@
RELEASE=@RELEASE@
PORT=@PORT@
VPC_CIDR=@VPC_CIDR@
SECURE_COOKIES=@SECURE_COOKIES@
LOG_GROUP=@LOG_GROUP@

# First, so that what follows (and its failure) reaches CloudWatch Logs and outlives the
# instance: this boot's output, then the service's.
mkdir -p /var/log/gallery
if dnf install -y -q amazon-cloudwatch-agent; then
  cat > /opt/aws/amazon-cloudwatch-agent/etc/gallery.json <<AGENT
{"logs": {"logs_collected": {"files": {"collect_list": [
  {"file_path": "/var/log/cloud-init-output.log", "log_group_name": "$LOG_GROUP", "log_stream_name": "{instance_id}/first-boot"},
  {"file_path": "/var/log/gallery/worker.log", "log_group_name": "$LOG_GROUP", "log_stream_name": "{instance_id}/worker"}
]}}}}
AGENT
  /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \
    -c file:/opt/aws/amazon-cloudwatch-agent/etc/gallery.json \
    || echo "gallery user data: the CloudWatch agent did not start: logs stay on this instance" >&2
else
  echo "gallery user data: could not install the CloudWatch agent: logs stay on this instance" >&2
fi

id gallery >/dev/null 2>&1 || useradd --system --home-dir /var/lib/gallery --create-home gallery
mkdir -p /opt/gallery /etc/gallery
aws s3 cp "s3://$BUCKET/releases/$RELEASE" /tmp/gallery.tar.gz --region "$REGION"
# Root's files, whoever built the release; the service's user may read and run them.
tar --no-same-owner -xzf /tmp/gallery.tar.gz -C /opt/gallery
chmod 755 /opt/gallery
rm -f /tmp/gallery.tar.gz

secret() {
  aws ssm get-parameter --with-decryption --name "/$DEPLOYMENT/$1" --query Parameter.Value --output text --region "$REGION"
}
# The release carries OpenVINO (older ones ONNX Runtime); without either, detection runs on rten.
detector_library() {
  local openvino
  for openvino in /opt/gallery/lib/openvino/libopenvino_c.so*; do
    # bf16 on instance types with bf16 units (AMX, AVX512-BF16), f32 on the others.
    [ -f "$openvino" ] && { printf 'GALLERY_OPENVINO_LIBRARY=%s\nGALLERY_DETECTOR_PRECISION=auto\n' "$openvino"; return 0; }
  done
  if [ -f /opt/gallery/lib/libonnxruntime.so ]; then
    echo GALLERY_ONNXRUNTIME_LIBRARY=/opt/gallery/lib/libonnxruntime.so
  fi
}
# Read before the file is written: a failed read inside the here-document would not stop
# the script, and the worker would start with an empty setting.
DATABASE_URL=$(secret database_url)
SECRET_KEY=$(secret secret_key)
# An empty answer (or the CLI's "None") would start a worker with no database or key, which
# restarts forever: stop here, named in the log, instead.
for name in DATABASE_URL SECRET_KEY; do
  case ${!name} in
    ""|None) echo "gallery user data: the parameter /$DEPLOYMENT/${name,,} is empty" >&2; exit 1 ;;
  esac
done
DETECTOR_LIBRARY=$(detector_library)
umask 077
cat > /etc/gallery/gallery.env <<ENV
GALLERY_DATABASE_URL=$DATABASE_URL
GALLERY_SECRET_KEY=$SECRET_KEY
GALLERY_STORE=s3://$BUCKET/photos
GALLERY_S3_REGION=$REGION
GALLERY_ADDRESS=0.0.0.0
GALLERY_PORT=$PORT
GALLERY_TRUSTED_PROXIES=["$VPC_CIDR"]
GALLERY_SECURE_COOKIES=$SECURE_COOKIES
GALLERY_DATA_DIR=/var/lib/gallery
GALLERY_MODEL_PATH=/opt/gallery/models/ch_PP-OCRv4_det_infer.folded.onnx
$DETECTOR_LIBRARY
GALLERY_METRICS_NAMESPACE=$NAMESPACE
AWS_REGION=$REGION
ENV
umask 022

cat > /etc/systemd/system/gallery-server.service <<'UNIT'
[Unit]
Description=Gallery worker
After=network-online.target
Wants=network-online.target

[Service]
User=gallery
EnvironmentFile=/etc/gallery/gallery.env
ExecStart=/opt/gallery/gallery-server serve
# A file, which the CloudWatch agent ships (it does not read the journal).
StandardOutput=append:/var/log/gallery/worker.log
StandardError=append:/var/log/gallery/worker.log
Restart=always
RestartSec=2
# The worker finishes in-flight uploads for up to 30 s after SIGTERM.
TimeoutStopSec=40
NoNewPrivileges=true
ProtectSystem=strict
ReadWritePaths=/var/lib/gallery
# ProtectSystem=strict leaves /tmp read-only, where a page upload is spooled: a private one.
PrivateTmp=true

[Install]
WantedBy=multi-user.target
UNIT
cat > /etc/logrotate.d/gallery <<'ROTATE'
/var/log/gallery/worker.log {
  daily
  maxsize 100M
  rotate 3
  compress
  missingok
  copytruncate
}
ROTATE
systemctl daemon-reload
systemctl enable --now gallery-server
