// libmosquitto (Debian libmosquitto-dev): the MQTT sink's client.
#include <mosquitto.h>
