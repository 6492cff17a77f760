"""Device protocol adapters behind one port: Modbus TCP with SunSpec models, OCPP 2.0.1."""
