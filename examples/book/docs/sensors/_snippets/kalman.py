# Rover's optional Kalman filter for the heading (rover/fusion/kalman.py).
PROCESS_NOISE = 0.01
MEASUREMENT_NOISE = 0.1


def kalman_step(heading, variance, gyro_rate, dt, encoder_heading):
    # Predict from the gyroscope, then correct with the encoders.
    heading += gyro_rate * dt
    variance += PROCESS_NOISE
    # highlight-next-line
    gain = variance / (variance + MEASUREMENT_NOISE)
    heading += gain * (encoder_heading - heading)
    return heading, (1 - gain) * variance
