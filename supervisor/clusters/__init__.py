"""Where trials run: one small module per cluster kind, each ``make_*(...) -> ClusterHandle``;
``launch.open_cluster`` picks one."""
