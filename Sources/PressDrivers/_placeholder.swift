enum _PPressDrivers {}
