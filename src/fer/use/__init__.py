"""Using a trained model: faces in photos classified (`predict`, the `fer-predict` command)
and the model exported to ONNX with its model card (`export`)."""
