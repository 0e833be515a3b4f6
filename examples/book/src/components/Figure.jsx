import React from 'react';

export default function Figure({src, caption}) {
  return (
    <figure>
      <img src={src} alt={caption} />
      <figcaption>{caption}</figcaption>
    </figure>
  );
}
