"""Social Leadership Warehouse: executives' social reach beside public trust surveys."""
